import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ageOf, formatSeconds, humanDuration, kubectlTable, secondsBetween } from './format.js';

describe('kubectlTable', () => {
  it("pads every column but the last to its widest cell plus 3, at least 6, as kubectl's tabwriter", () => {
    assert.equal(
      kubectlTable(
        ['NAME', 'A', 'LONG HEADER', 'LAST'],
        [
          ['x', '1', 'v', 'tail cell'],
          ['a-longer-name', '22', '', ''],
        ],
      ),
      [
        'NAME            A     LONG HEADER   LAST',
        'x               1     v             tail cell',
        'a-longer-name   22',
        '',
      ].join('\n'),
    );
  });

  it('counts code points, so … is one column', () => {
    assert.equal(kubectlTable(['AB', 'C'], [['a…', 'c']]), 'AB    C\na…    c\n');
  });
});

describe('humanDuration (kubectl AGE)', () => {
  const cases: Array<[number, string]> = [
    [-3000, '<invalid>'],
    [-1500, '0s'],
    [0, '0s'],
    [119_999, '119s'],
    [120_000, '2m'],
    [125_000, '2m5s'],
    [600_000, '10m'],
    [179 * 60_000, '179m'],
    [3 * 3_600_000, '3h'],
    [3 * 3_600_000 + 5 * 60_000, '3h5m'],
    [8 * 3_600_000, '8h'],
    [47 * 3_600_000, '47h'],
    [49 * 3_600_000, '2d1h'],
    [3 * 86_400_000, '3d'],
    [8 * 86_400_000, '8d'],
    [730 * 86_400_000, '2y'],
    [731 * 86_400_000, '2y1d'],
    [9 * 365 * 86_400_000, '9y'],
  ];
  for (const [ms, want] of cases) it(`${ms} ms is ${want}`, () => assert.equal(humanDuration(ms), want));

  it('ageOf: a missing or bad time is <unknown>', () => {
    const now = new Date('2026-01-01T01:00:00Z');
    assert.equal(ageOf('2026-01-01T00:00:00Z', now), '60m');
    assert.equal(ageOf(undefined, now), '<unknown>');
    assert.equal(ageOf('yesterday', now), '<unknown>');
  });
});

describe('formatSeconds and secondsBetween', () => {
  it('prints pull durations at a useful precision', () => {
    assert.deepEqual([0.85, 12.34, 99.96, 245.5, 3723].map(formatSeconds), [
      '850ms',
      '12.3s',
      '100.0s',
      '4m06s',
      '1h02m',
    ]);
  });
  it('measures between RFC 3339 times, never negative', () => {
    assert.equal(secondsBetween('2026-01-01T00:00:00Z', '2026-01-01T00:00:42Z'), 42);
    assert.equal(secondsBetween('2026-01-01T00:01:00Z', '2026-01-01T00:00:00Z'), 0);
    assert.equal(secondsBetween(undefined, '2026-01-01T00:00:00Z'), undefined);
    assert.equal(secondsBetween('x', '2026-01-01T00:00:00Z'), undefined);
  });
});
