/**
 * The import rules of the project, checked by `npm run lint:deps` and by
 * test/architecture.test.ts (docs/architecture.md explains them).
 *
 * Inside the runner, layers from the top down; a module may import its own layer and any layer
 * below it, never one above:
 *
 *   main.ts, demo.ts, local/      the entry points (nothing imports them)
 *   commands/, preflight.ts       thin dispatchers over the engine drivers; report/ (a run's
 *                                 metrics file and notification)
 *   engines/                      one folder per engine, engines/shared/, the registry index.ts
 *   archive/, catalog.ts          engine-neutral log archive, windows, chains; the manifests
 *   pipeline/                     stages, store, read-back, compress, encrypt, tar
 *   storage/                      file://, s3://, gs:// behind one interface
 *   config.ts, log.ts, errors.ts, metrics.ts, report/config.ts   the runner's base
 *   lib/core                      the shared model
 */
const LAYERS = [
  { name: 'entry', path: '^runner/src/(main|demo)\\.ts$|^runner/src/local/' },
  { name: 'commands', path: '^runner/src/commands/|^runner/src/preflight\\.ts$|^runner/src/report/(?!config\\.ts$)' },
  { name: 'engines', path: '^runner/src/engines/' },
  { name: 'archive', path: '^runner/src/archive/|^runner/src/(catalog|chain-tiers)\\.ts$' },
  { name: 'pipeline', path: '^runner/src/pipeline/' },
  { name: 'storage', path: '^runner/src/storage/' },
  { name: 'base', path: '^runner/src/(config|log|errors|metrics|report/config)\\.ts$' },
];

/** One rule per layer: nothing in it imports a layer above it. */
const upward = LAYERS.slice(1).map((layer, i) => ({
  name: `layer-${layer.name}`,
  comment: `${layer.name} must not import a layer above it (${LAYERS.slice(0, i + 1).map((l) => l.name).join(', ')})`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(0, i + 1).map((l) => `(${l.path})`).join('|') },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import circles anywhere',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'in-a-layer',
      comment: 'every runner module belongs to a layer (add a new folder to LAYERS)',
      severity: 'error',
      from: { path: '^runner/src/', pathNot: LAYERS.map((l) => `(${l.path})`).join('|') },
      to: {},
    },
    {
      name: 'engine-to-engine',
      comment: 'engines/X never imports engines/Y: what two engines share goes to engines/shared/ or archive/',
      severity: 'error',
      from: { path: '^runner/src/engines/([^/]+)/' },
      to: { path: '^runner/src/engines/', pathNot: '^runner/src/engines/($1|shared)/' },
    },
    {
      name: 'commands-through-drivers',
      comment: 'commands reach an engine through the registry (engines/index.ts) and the driver interface, never its folder',
      severity: 'error',
      from: { path: '^runner/src/(commands/|report/|preflight\\.ts$|main\\.ts$)' },
      to: { path: '^runner/src/engines/(?!shared/|index\\.ts$)' },
    },
    {
      name: 'engine-shared-neutral',
      comment: 'engines/shared/ knows no engine',
      severity: 'error',
      from: { path: '^runner/src/engines/shared/' },
      to: { path: '^runner/src/engines/', pathNot: '^runner/src/engines/shared/' },
    },
    {
      name: 'core-imports-nothing',
      comment: 'lib/core imports nothing of lib/aws, lib/cdktf, runner or lambda',
      severity: 'error',
      from: { path: '^lib/core/' },
      to: { path: '^(lib/aws|lib/cdktf|runner|lambda)/' },
    },
    {
      name: 'aws-not-cdktf',
      comment: 'lib/aws and lib/cdktf never import each other',
      severity: 'error',
      from: { path: '^lib/aws/' },
      to: { path: '^lib/cdktf/' },
    },
    {
      name: 'cdktf-not-aws',
      comment: 'lib/aws and lib/cdktf never import each other',
      severity: 'error',
      from: { path: '^lib/cdktf/' },
      to: { path: '^lib/aws/' },
    },
    {
      name: 'constructs-not-programs',
      comment: 'the constructs ship the runner and the Lambda as bundles, never import their source',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(runner|lambda)/' },
    },
    {
      name: 'lambda-only-core',
      comment: 'lambda imports only lib/core (and its own files)',
      severity: 'error',
      from: { path: '^lambda/' },
      to: { path: '^(lib/(?!core/)|runner/)' },
    },
    {
      name: 'runner-only-core',
      comment: 'the runner imports only lib/core of lib/, and never lambda/',
      severity: 'error',
      from: { path: '^runner/' },
      to: { path: '^(lib/(?!core/)|lambda/)' },
    },
  ],
  options: {
    // TypeScript 7 is the native compiler and has no JavaScript API; swc parses the sources.
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist)/' },
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
