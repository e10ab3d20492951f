// Runs the built `hoist` binary (bin/hoist.js over dist/) for the analyze, doctor and render tests.
import { runHoist, type HoistResult } from './helpers/cri.js';

export type { HoistResult };

/** Runs hoist with `args`; `input` is written to its stdin (closed either way). */
export function hoist(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<HoistResult> {
  return runHoist(args, opts);
}
