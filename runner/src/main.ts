// Placeholder entry; replaced by the runner.
process.exitCode = 1;
