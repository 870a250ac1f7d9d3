/**
 * SQL lives in the index module (src/catalog/), the connection (src/db/) and migrations only.
 * dependency-cruiser's `sql-only-in-index` rule catches an import of knex; this check catches the
 * other way SQL leaks: a `Db`/`Trx` handed in by a caller and used as a query builder on a table
 * (`db('studies')`, `trx('jobs as j')`) or for raw SQL (`.raw(`, `whereRaw(`…). Transactions
 * (`db.transaction(async (trx) => …)`) may be opened by a service: the statements inside still
 * run in the catalog.
 *
 * The table names come from the migrations, so a new table is covered without editing this file.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const SCANNED = ['src', 'dicomweb', 'dimse', 'storage'];
const ALLOWED = [/^src\/catalog\//, /^src\/db\//, /^migrations\//];

function files(dir) {
  const out = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const tables = new Set();
for (const f of files('migrations')) {
  for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/createTable\(\s*['"`]([a-z_]+)['"`]/g)) tables.add(m[1]);
}
if (tables.size === 0) {
  console.error('sql-check: no tables found in migrations/ (the check would pass vacuously)');
  process.exit(2);
}

const tableCall = new RegExp(
  `(?:\\b(?:db|trx|tx|knex)|\\.(?:db|trx))\\(\\s*['"\`](${[...tables].join('|')})(\\s+as\\s+\\w+)?['"\`]\\s*\\)`,
);
const rawSql = /\.(raw|whereRaw|orWhereRaw|havingRaw|orderByRaw|joinRaw|selectRaw)\(/;
// SQL text built by hand (`{ sql: 'upper(??)', bindings }` fragments, SELECT … strings).
const sqlText = /\bsql:\s*['"`]|['"`]\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s/;

const problems = [];
for (const dir of SCANNED) {
  for (const f of files(dir)) {
    if (ALLOWED.some((re) => re.test(f))) continue;
    const lines = fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '');
      if (/^\s*(\*|\/\*)/.test(code)) return;
      if (tableCall.test(code) || rawSql.test(code) || sqlText.test(code)) problems.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
}

if (problems.length) {
  console.error(`SQL outside the index module (move it into src/catalog/):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(`sql-check: no SQL outside src/catalog, src/db and migrations (${tables.size} tables)`);
