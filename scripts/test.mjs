#!/usr/bin/env node
// The project's one test command (`npm test`): installs the real peers the integration tests need
// (when missing and running as root), then runs lint, format check, type check, build and every
// test file through node:test. `--unit` runs only the unit tests beside the code.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const unitOnly = process.argv.includes('--unit');
const ci = process.env.CI === 'true';

function run(cmd, args, opts = {}) {
  process.stdout.write(`\n$ ${cmd} ${args.join(' ')}\n`);
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (res.status !== 0) {
    process.stderr.write(
      `hoist test: '${cmd} ${args.join(' ')}' failed (exit ${res.status ?? res.signal})\n`,
    );
    process.exit(res.status ?? 1);
  }
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out.sort();
}

if (!unitOnly) {
  // Real peers (docker-registry, skopeo, containerd...) come from Debian's packages.
  run('bash', ['scripts/install-peers.sh']);
}
run('npx', ['eslint', '.']);
run('npx', ['prettier', '--check', '.']);
run('npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']);
run('npx', ['tsc', '-p', 'tsconfig.build.json']);

const files = [...findTests(join(root, 'src')), ...(unitOnly ? [] : findTests(join(root, 'test')))];
if (files.length === 0) {
  process.stderr.write('hoist test: no test files found\n');
  process.exit(1);
}
run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  env: { ...process.env, CI: ci ? 'true' : (process.env.CI ?? '') },
});
