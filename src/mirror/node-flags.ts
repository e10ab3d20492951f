/**
 * The Node (V8) flags the mirror runs with: the image's ENTRYPOINT passes them (test/node-flags
 * checks it does) and the benchmarks start the mirror with them, so what is measured is what ships.
 *
 * Why: under load V8 lets the heap grow to several times what is live before it collects (the old
 * generation grows by a factor up to 4 when collection is cheap, and the young generation to
 * 3 × 16 MiB). With 1,000 connections on a cached blob the live heap was about 30 MiB and the heap
 * 100–120 MiB (bench/load.ts --scenario many, `--trace-gc`). A 4 MiB semi-space and a heap that
 * grows by 20 % over what is live keep it near 50 MiB; the price measured with `--cpu-prof` was
 * garbage collection going from 4–6 % to about 13 % of the mirror's busy CPU.
 *
 * The image has one ENTRYPOINT, so the agent, the controller and `hoist convert` run with them
 * too. Neither flag limits the heap (`--heap-growing-percent` changes when V8 collects, not how
 * much it may hold; the semi-space is only the young generation), so no command can run out of
 * memory because of them; what they cost is some garbage-collection CPU.
 */
export const MIRROR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=20'];
