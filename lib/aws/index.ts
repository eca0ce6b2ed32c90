// Re-exports the AWS CDK constructs (filled in by the constructs work).
export {};
