/**
 * Go `time.Duration` strings as the kubelet prints them with %v (`1.234s`, `3m2.5s`, `1h0m0s`,
 * `850ms`, `1.5µs`): Go's time.ParseDuration grammar. Returns seconds, or undefined. Pure.
 */
const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};
const WHOLE = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!WHOLE.test(text)) return undefined;
  let seconds = 0;
  for (const m of text.matchAll(PART)) seconds += Number(m[1]) * (UNIT_SECONDS[m[2] ?? ''] ?? 0);
  return text.startsWith('-') ? -seconds : seconds;
}
