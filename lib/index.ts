// The AWS CDK entry point: the cloud-neutral model and the aws-cdk-lib constructs.
export * from './core';
export * from './aws';
