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

/** An SQS queue. */
export interface IQueueRef {
  /** The queue's name. */
  readonly name: string;
}

/** A Lambda function. */
export interface IFunctionRef {
  readonly functionName: string;
}

/** An IAM role. */
export interface IRoleRef {
  readonly arn: string;
}

/** An ECS task definition. */
export interface ITaskDefinitionRef {
  /** The ARN with the revision. */
  readonly arn: string;
  /** The ARN of the family (any revision). */
  readonly arnWithoutRevision: string;
}
