import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { learnsPrivate, nextStep, upstreamMode, type AccessFacts } from './access-decision.js';

/** Runs the decision to its end, answering questions from `answers`; returns the steps taken. */
function walk(facts: AccessFacts, answers: { isPublic: boolean; clientCheck?: 'ok' | 'denied' | 'missing' }) {
  const steps: string[] = [];
  for (let i = 0; i < 5; i++) {
    const step = nextStep(facts);
    if (step.kind === 'ask') {
      steps.push(`ask ${step.question}`);
      if (step.question === 'public') facts.isPublic = answers.isPublic;
      else facts.clientCheck = answers.clientCheck;
      continue;
    }
    steps.push(step.kind === 'serve' ? `serve via ${step.via}` : step.kind);
    return steps;
  }
  throw new Error('no decision after 5 steps');
}

describe('access decision', () => {
  it('names the mode from the mirror’s own credentials and clientAuth', () => {
    assert.equal(upstreamMode(false, 'verify'), 'passthrough');
    assert.equal(upstreamMode(false, 'trust'), 'passthrough', 'trust needs the mirror’s own credentials');
    assert.equal(upstreamMode(true, 'verify'), 'verify');
    assert.equal(upstreamMode(true, 'trust'), 'trust');
  });

  const table: Array<
    [string, AccessFacts, { isPublic: boolean; clientCheck?: 'ok' | 'denied' | 'missing' }, string[]]
  > = [
    [
      'trust serves everyone with the mirror’s credentials',
      { mode: 'trust', knownPrivate: false, clientHasCredentials: false },
      { isPublic: false },
      ['serve via mirror'],
    ],
    [
      'passthrough tries anonymously first, without asking upstream',
      { mode: 'passthrough', knownPrivate: false, clientHasCredentials: true },
      { isPublic: false },
      ['serve via mirror'],
    ],
    [
      'passthrough, private, no credentials: challenge',
      { mode: 'passthrough', knownPrivate: true, clientHasCredentials: false },
      { isPublic: false },
      ['ask public', 'challenge'],
    ],
    [
      'passthrough, private, accepted credentials: upstream with the client’s',
      { mode: 'passthrough', knownPrivate: true, clientHasCredentials: true },
      { isPublic: false, clientCheck: 'ok' },
      ['ask public', 'ask client', 'serve via client'],
    ],
    [
      'passthrough, private, wrong credentials: refused',
      { mode: 'passthrough', knownPrivate: true, clientHasCredentials: true },
      { isPublic: false, clientCheck: 'denied' },
      ['ask public', 'ask client', 'refuse'],
    ],
    [
      'passthrough, private, accepted but absent: missing',
      { mode: 'passthrough', knownPrivate: true, clientHasCredentials: true },
      { isPublic: false, clientCheck: 'missing' },
      ['ask public', 'ask client', 'missing'],
    ],
    [
      'passthrough, marked private but public now: anonymous',
      { mode: 'passthrough', knownPrivate: true, clientHasCredentials: false },
      { isPublic: true },
      ['ask public', 'serve via mirror'],
    ],
    [
      'verify, public repository: mirror, whatever the client sent',
      { mode: 'verify', knownPrivate: false, clientHasCredentials: false },
      { isPublic: true },
      ['ask public', 'serve via mirror'],
    ],
    [
      'verify, private, no credentials: challenge',
      { mode: 'verify', knownPrivate: false, clientHasCredentials: false },
      { isPublic: false },
      ['ask public', 'challenge'],
    ],
    [
      'verify, private, accepted: fetched with the mirror’s own',
      { mode: 'verify', knownPrivate: false, clientHasCredentials: true },
      { isPublic: false, clientCheck: 'ok' },
      ['ask public', 'ask client', 'serve via mirror'],
    ],
    [
      'verify, private, wrong credentials: refused',
      { mode: 'verify', knownPrivate: false, clientHasCredentials: true },
      { isPublic: false, clientCheck: 'denied' },
      ['ask public', 'ask client', 'refuse'],
    ],
  ];
  for (const [name, facts, answers, expected] of table) {
    it(name, () => assert.deepEqual(walk({ ...facts }, answers), expected));
  }

  it('learns that a repository is private only from a refused anonymous passthrough request', () => {
    assert.equal(learnsPrivate('passthrough', 'mirror', 'UNAUTHORIZED'), true);
    assert.equal(learnsPrivate('passthrough', 'mirror', 'DENIED'), true);
    assert.equal(
      learnsPrivate('passthrough', 'client', 'UNAUTHORIZED'),
      false,
      'the client’s own were refused',
    );
    assert.equal(learnsPrivate('passthrough', 'mirror', 'MANIFEST_UNKNOWN'), false);
    assert.equal(learnsPrivate('passthrough', 'mirror', 'UPSTREAM_UNAVAILABLE'), false);
    assert.equal(learnsPrivate('verify', 'mirror', 'UNAUTHORIZED'), false, 'the mirror’s own were refused');
    assert.equal(learnsPrivate('trust', 'mirror', 'UNAUTHORIZED'), false);
  });
});
