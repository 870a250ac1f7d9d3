/**
 * Layers that only point down (README, Layout). Checked by `npm run lint` on the import graph of
 * .cache/deps/js (tools/lint/deps-source.mjs: the runtime code compiled with type-only imports
 * kept). Paths below are written for that tree: `${R}src/http/` is src/http/ in the sources.
 * Tests, bench and fixtures are outside the rules (they are not compiled into .cache/deps).
 *
 * Existing violations live in .dependency-cruiser-known-violations.json (`--ignore-known`): lint
 * passes with them and fails on every new one; tools/lint/deps-baseline.mjs fails when the file
 * lists one that no longer occurs, so it only shrinks.
 */
const R = '^\\.cache/deps/js/';
const PROTOCOLS = `${R}(dicomweb/|dimse/|src/http/)`;
const SERVICES = `${R}src/(ingest|query|analysis|reports|forwarding|integrations|fhir|ups|integrity|retention|backup|jobs|volumes|medgemma|auth|audit|records|metadata|tools)/`;
const FOUNDATIONS = `${R}(src/(catalog|db|dicom|workers|types|observability)/|storage/|migrations/|src/(config|errors|logger|private-files|events|backoff)\\.js$)`;
const ROOT = `${R}src/(app|cli)\\.js$`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle: modules that cannot be understood, tested or loaded one without the other.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-import-of-root',
      severity: 'error',
      comment:
        'src/app.ts (the composition root) and src/cli.ts build everything; nothing imports them but the CLI. ' +
        'Declare the narrow interface a part needs in a leaf module instead.',
      from: { pathNot: `${R}src/cli\\.js$` },
      to: { path: ROOT },
    },
    {
      name: 'services-not-up',
      severity: 'error',
      comment: 'Application services may import foundations and each other, never protocols (wire formats).',
      from: { path: SERVICES },
      to: { path: PROTOCOLS },
    },
    {
      name: 'foundations-not-up',
      severity: 'error',
      comment: 'Foundations (index, storage, DICOM kernel, config, errors, log) import nothing above them.',
      from: { path: FOUNDATIONS },
      to: { path: `${PROTOCOLS}|${SERVICES}` },
    },
    {
      name: 'dicom-kernel-leaf',
      severity: 'error',
      comment: 'src/dicom (the DICOM kernel) imports nothing of ours but errors, config, the logger and the worker pool.',
      from: { path: `${R}src/dicom/` },
      to: { path: R, pathNot: `${R}src/(dicom/|types/|workers/|(errors|config|logger)\\.js$)` },
    },
    {
      name: 'sql-only-in-index',
      severity: 'error',
      comment:
        "knex (SQL) is the index's business: src/catalog holds the repositories, src/db the connection, migrations the " +
        'schema. Everything else calls the catalog with a `Db` (or `Trx`) from src/db/connection.ts.',
      from: { path: R, pathNot: `${R}(src/(catalog|db)/|migrations/)` },
      to: { path: '(^|/)node_modules/knex/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.d\\.ts$' },
    moduleSystems: ['es6', 'cjs'],
    // The copy's node_modules is a link to the real one: no need to resolve inside packages.
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
