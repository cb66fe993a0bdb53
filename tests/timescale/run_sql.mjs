// Runs SQL files in PGlite with TimescaleDB (PostgreSQL 17 in WebAssembly, in-process, in memory),
// then check queries, and prints one JSON document on stdout.
//
//   node run_sql.mjs [--checks checks.json] file1.sql [file2.sql ...]
//
// Each SQL file runs in its own transaction (BEGIN ... COMMIT), as `kappa db migrate` applies a
// migration. checks.json is a list of {"name": ..., "sql": ...} or {"name": ..., "file": ...} (a migration
// file applied then, in its own transaction, with no rows): each runs on its own, outside a
// transaction block (so CALL refresh_continuous_aggregate works), in order; statements may change
// data for later checks; `${name}` in a check's SQL stands for the first value of the first row of
// the earlier check `name` (CALL takes no subqueries: `CALL run_job(${compress_job})`). Output: {"applied": [files], "checks": {name: rows}} with rows as objects;
// bigint values become numbers, dates ISO strings (cast timestamps to text in SQL to avoid zones).
// On a failure: {"error": message, "failed": file or check name} and exit status 1.
// PGlite has no background workers (policies run only with CALL run_job) and crashes on COPY FROM
// STDIN: do not use COPY.
import { readFileSync } from 'node:fs';
import { PGlite } from 'pglite-ts';
import { timescaledb } from 'pglite-ts/timescaledb';

function parseArgs(argv) {
  const files = [];
  let checks = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--checks') {
      checks = JSON.parse(readFileSync(argv[++i], 'utf8'));
    } else {
      files.push(argv[i]);
    }
  }
  return { files, checks };
}

function toJson(value) {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v));
}

// One migration file in its own transaction, as `kappa db migrate` applies it.
async function migrate(file) {
  await db.exec('BEGIN');
  try {
    await db.exec(readFileSync(file, 'utf8'));
    await db.exec('COMMIT');
  } catch (err) {
    await db.exec('ROLLBACK');
    throw err;
  }
}

const { files, checks } = parseArgs(process.argv.slice(2));
const out = { applied: [], checks: {} };
let current = null;
const db = new PGlite({ extensions: { timescaledb } });
try {
  for (const file of files) {
    current = file;
    await migrate(file);
    out.applied.push(file);
  }
  for (const check of checks) {
    current = check.name;
    if (check.file) {  // a migration applied once data exists (e.g. in compressed chunks)
      await migrate(check.file);
      out.checks[check.name] = [];
      continue;
    }
    const text = check.sql.replace(/\$\{(\w+)\}/g, (_m, name) => {
      const rows = out.checks[name];
      if (!rows || rows.length === 0) throw new Error(`\${${name}}: no earlier check ${name} with a row`);
      return String(Object.values(rows[0])[0]);
    });
    const result = await db.query(text);
    out.checks[check.name] = result.rows;
  }
  current = null;
} catch (err) {
  out.error = String(err && err.message ? err.message : err);
  out.failed = current;
} finally {
  await db.close();
}
// Exit only once stdout is flushed: writes to a pipe are asynchronous, and large outputs would be cut.
process.stdout.write(toJson(out) + '\n', () => process.exit(out.error ? 1 : 0));
