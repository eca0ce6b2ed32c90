import { Token } from 'cdktf';
import { ConfigError } from '../../core';
import { IEcrRepositoryRef } from './refs';

/**
 * An ECR image URI: account, region, China partition, repository, then a tag or a digest (one pattern, the
 * `.source` of two literals so each stays under the line width).
 */
const ECR_IMAGE_URI = new RegExp(
  /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?\//.source +
    /([a-z0-9][a-z0-9._/-]*)(?::[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$/.source,
);

/**
 * The runner's container image in ECR. Terraform does not build images: build
 * `dist/runner` (which holds the Dockerfile and the bundled runner) and push it first; see
 * the README (CDK for Terraform).
 */
export class RunnerImage {
  /**
   * An image in an ECR repository (an `EcrRepository` or `DataAwsEcrRepository`).
   * @param tag a tag or a digest (`sha256:…`); an immutable tag or a digest keeps deploys repeatable
   */
  public static fromEcrRepository(repository: IEcrRepositoryRef, tag: string): RunnerImage {
    if (!Token.isUnresolved(tag) && !/^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.test(tag)) {
      throw new ConfigError(
        `image tag '${tag}' is not a valid tag or digest. Use e.g. '1.4.0' or 'sha256:<64 hex digits>'.`,
      );
    }
    const sep = !Token.isUnresolved(tag) && tag.startsWith('sha256:') ? '@' : ':';
    return new RunnerImage(`${repository.repositoryUrl}${sep}${tag}`, repository.arn);
  }

  /**
   * An image given by its full ECR URI, e.g.
   * `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dbbackup:1.4.0`.
   */
  public static fromImageUri(uri: string): RunnerImage {
    if (Token.isUnresolved(uri)) {
      throw new ConfigError(
        'fromImageUri needs a literal URI (the repository ARN is worked out from it); ' +
          'with a token, use RunnerImage.fromEcrRepository(repository, tag).',
      );
    }
    const m = ECR_IMAGE_URI.exec(uri);
    if (m === null) {
      throw new ConfigError(
        `image '${uri}' is not an ECR image URI. Use ` +
          `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG (or @sha256:DIGEST), or ` +
          `RunnerImage.fromEcrRepository(repository, tag).`,
      );
    }
    const partition = m[3] !== undefined ? 'aws-cn' : 'aws';
    return new RunnerImage(uri, `arn:${partition}:ecr:${m[2]}:${m[1]}:repository/${m[4]}`);
  }

  private constructor(
    /** The image reference the task definition runs. */
    public readonly imageUri: string,
    /** The repository the execution role may pull from. */
    public readonly repositoryArn: string,
  ) {}
}
