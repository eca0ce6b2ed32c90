/**
 * What the constructs need to know about resources made elsewhere. Each is satisfied both by
 * the provider's resource class and by its data source (`S3Bucket` / `DataAwsS3Bucket`,
 * `KmsKey` / `DataAwsKmsKey`, …), so "bring your own" works with either.
 */

/** An S3 bucket. */
export interface IBucketRef {
  /** The bucket's name. */
  readonly bucket: string;
  readonly arn: string;
}

/** A KMS key. */
export interface IKeyRef {
  readonly arn: string;
}

/** A Secrets Manager secret. */
export interface ISecretRef {
  readonly arn: string;
}

/** An ECR repository. */
export interface IEcrRepositoryRef {
  readonly arn: string;
  /** `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME`. */
  readonly repositoryUrl: string;
}

/** An ECS cluster. */
export interface IClusterRef {
  readonly arn: string;
}

/** An SNS topic. */
export interface ITopicRef {
  readonly arn: string;
}
