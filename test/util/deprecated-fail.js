// Every test: a deprecated aws-cdk-lib (jsii) API called by the library throws instead of printing a
// warning into the user's synth, unless the caller chose another mode (JSII_DEPRECATED=warn|quiet).
process.env.JSII_DEPRECATED ??= 'fail';
