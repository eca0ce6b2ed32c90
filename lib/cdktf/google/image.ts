import { Token } from 'cdktf';
import { ConfigError } from '../../core';
import { IArtifactRegistryRepositoryRef } from './refs';

/**
 * An Artifact Registry image URI: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE, then a tag or a digest (one
 * pattern, the `.source` of two literals so each stays under the line width).
 */
const ARTIFACT_REGISTRY_IMAGE_URI = new RegExp(
  /^[a-z0-9-]+-docker\.pkg\.dev\/[a-z0-9:.-]+\/[a-z0-9._-]+\//.source +
    /[a-z0-9._/-]+(?::[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$/.source,
);

/**
 * The runner's container image in Artifact Registry. Terraform does not build images: build
 * `dist/runner` and push it first (the README (CDK for Terraform)).
 */
export class RunnerImage {
  /**
   * An image in an Artifact Registry Docker repository (`ArtifactRegistryRepository` or its data source).
   * @param image the image name inside the repository, e.g. `dbbackup`
   * @param tag a tag or a digest (`sha256:…`)
   */
  public static fromArtifactRegistry(
    repository: IArtifactRegistryRepositoryRef,
    image: string,
    tag: string,
  ): RunnerImage {
    if (!Token.isUnresolved(image) && !/^[a-z0-9]+(?:[._/-][a-z0-9]+)*$/.test(image)) {
      throw new ConfigError(
        `image name '${image}' is not valid; use lower-case letters, digits ` +
          `and '.', '_', '-', '/' separators (e.g. 'dbbackup').`,
      );
    }
    if (!Token.isUnresolved(tag) && !/^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/.test(tag)) {
      throw new ConfigError(
        `image tag '${tag}' is not a valid tag or digest. Use e.g. '1.4.0' or 'sha256:<64 hex digits>'.`,
      );
    }
    const sep = !Token.isUnresolved(tag) && tag.startsWith('sha256:') ? '@' : ':';
    return new RunnerImage(
      `${repository.location}-docker.pkg.dev/${repository.project}/${repository.repositoryId}/${image}${sep}${tag}`,
    );
  }

  /**
   * An image given by its full Artifact Registry URI, e.g.
   * `europe-west1-docker.pkg.dev/my-project/dbbackup/dbbackup:1.4.0`.
   */
  public static fromImageUri(uri: string): RunnerImage {
    if (!Token.isUnresolved(uri) && !ARTIFACT_REGISTRY_IMAGE_URI.test(uri)) {
      throw new ConfigError(
        `image '${uri}' is not an Artifact Registry image URI. Use ` +
          `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG (or @sha256:DIGEST).`,
      );
    }
    return new RunnerImage(uri);
  }

  private constructor(public readonly imageUri: string) {}
}
