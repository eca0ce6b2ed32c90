// The example CDK app (`npx cdk synth` at the repository root). It needs `npm run build` once
// for the pre-bundled runner and verification function, and no AWS credentials, Docker or network.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NIST80053R5Checks } from 'cdk-nag';
import { BackupExampleStack } from './backup-stack';

const app = new App();
new BackupExampleStack(app, 'DbBackupExample', {
  description: 'db-backup-constructs example: nightly PostgreSQL backups with verification, drills and alarms',
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new NIST80053R5Checks(app));
app.synth();
