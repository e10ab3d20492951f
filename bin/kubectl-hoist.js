#!/usr/bin/env node
// The kubectl plugin: kubectl runs `kubectl-hoist` from PATH for `kubectl hoist ...`.
import { main } from '../dist/cli/kubectl-hoist.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`kubectl hoist: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
