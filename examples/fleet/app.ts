// The fleet example: FLEET_SIZE databases (default 3) on one vault. From the project root:
//   FLEET_SIZE=35 npx cdk synth -a "$(node -p "require('./examples/fleet/cdk.json').app")"
// Needs `npm run build` once (the pre-bundled runner and verifier), no AWS credentials or Docker.
import { App } from 'aws-cdk-lib';
import { FleetExampleStack, fleetSize } from './fleet-stack';

const app = new App();
new FleetExampleStack(app, 'DbBackupFleet', {
  size: fleetSize(),
  description: 'db-backup-constructs fleet example: many databases on one vault',
});
app.synth();
