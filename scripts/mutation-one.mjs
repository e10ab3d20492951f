// Runs StrykerJS over one module with only the test files that cover it (docs/testing.md).
// StrykerJS has no command-line flag for the tap runner's test files, so this writes a copy of
// stryker.config.json with `mutate`, `tap.testFiles`, the incremental file and the report paths
// replaced, under reports/ (git-ignored), and runs `stryker run` on it. Extra arguments after
// `--` go to stryker (for example `--concurrency 1`).
//
//   node scripts/mutation-one.mjs plan 'src/prepull/plan.ts' 'src/prepull/plan*.test.ts' -- --concurrency 1
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [name, mutate, tests, sep, ...rest] = process.argv.slice(2);
if (!name || !/^[a-z0-9-]+$/.test(name) || !mutate || !tests || (sep !== undefined && sep !== '--')) {
  console.error(
    "usage: node scripts/mutation-one.mjs <name> '<mutate glob>[,…]' '<test file glob>[,…]' [-- <stryker options>]",
  );
  process.exit(2);
}
const base = JSON.parse(readFileSync('stryker.config.json', 'utf8'));
delete base.$schema;
const config = {
  ...base,
  // The test files are never mutated, whatever the globs say.
  mutate: [...mutate.split(','), '!src/**/*.test.ts'],
  tap: { ...base.tap, testFiles: tests.split(',') },
  incrementalFile: `reports/stryker-incremental-${name}.json`,
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
};
mkdirSync('reports', { recursive: true });
const file = `reports/stryker-${name}.config.json`;
writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
const r = spawnSync('npx', ['stryker', 'run', file, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
