// CloudFormation resources of the fleet example per number of databases:
//   node --import tsx bench/fleet-resources.ts [SIZES…]   (default 1 2 5 10 50)
// Synthesizes in memory (no Docker, no credentials); prints the total, the resources beyond the
// one-database stack per extra database, and the largest types per database.
import { App } from 'aws-cdk-lib';
import { FleetExampleStack } from '../examples/fleet/fleet-stack';

function count(size: number): { total: number; types: Record<string, number> } {
  // No limit at synth: the bench reports sizes beyond CloudFormation's 500 too.
  const app = new App({
    context: { '@aws-cdk/aws-iam:minimizePolicies': true, '@aws-cdk/core:stackResourceLimit': 0 },
  });
  new FleetExampleStack(app, 'DbBackupFleet', { size, env: { account: '123456789012', region: 'eu-west-1' } });
  const template = app.synth().getStackByName('DbBackupFleet').template as {
    Resources: Record<string, { Type: string }>;
  };
  const types: Record<string, number> = {};
  for (const r of Object.values(template.Resources)) types[r.Type] = (types[r.Type] ?? 0) + 1;
  return { total: Object.keys(template.Resources).length, types };
}

const sizes = process.argv.slice(2).map(Number);
const base = count(1);
console.log('databases  resources  per extra database  fits in 500');
for (const n of sizes.length > 0 ? sizes : [1, 2, 5, 10, 50]) {
  const { total } = n === 1 ? base : count(n);
  const per = n === 1 ? '-' : ((total - base.total) / (n - 1)).toFixed(2);
  console.log(
    `${String(n).padStart(9)}  ${String(total).padStart(9)}  ${per.padStart(18)}  ${total <= 500 ? 'yes' : 'no'}`,
  );
}
const two = count(2);
const delta = Object.entries(two.types)
  .map(([type, k]) => [type, k - (base.types[type] ?? 0)] as const)
  .filter(([, d]) => d !== 0)
  .map(([type, d]) => `${type} ${d}`);
console.log(`one more database adds: ${delta.join(', ')}`);
