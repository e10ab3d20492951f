import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalyzeError } from './errors.js';
import { parseDockerfile, runScript, shippedStages } from './dockerfile-parser.js';
import { splitWords } from './dockerfile-words.js';
import { DockerIgnore } from './dockerignore.js';
import { splitCommands } from './shell-commands.js';

describe('Dockerfile parser', () => {
  it('joins continuation lines, dropping comment and empty lines inside them', () => {
    const df = parseDockerfile(
      'FROM debian:12\nRUN apt-get update && \\\n    # a comment inside\n\n    apt-get install -y curl\nCMD ["sh"]\n',
    );
    const [, run, cmd] = df.instructions;
    assert.equal(run?.keyword, 'RUN');
    assert.equal(run?.line, 2);
    assert.equal(run?.endLine, 5);
    assert.match(run?.args ?? '', /apt-get update &&\s+apt-get install -y curl/);
    assert.equal(cmd?.line, 6);
    assert.deepEqual(cmd?.json, ['sh']);
  });

  it('honours the escape directive (backtick, as on Windows)', () => {
    const df = parseDockerfile(
      '# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nCOPY . C:\\app\nRUN dir `\n  C:\\app\n',
    );
    assert.equal(df.escape, '`');
    assert.equal(df.instructions[1]?.words.join('|'), '.|C:\\app');
    assert.equal(df.instructions[2]?.line, 4);
    assert.match(df.instructions[2]?.args ?? '', /dir\s+C:\\app/);
  });

  it('stops reading directives at the first comment, blank line or instruction', () => {
    const df = parseDockerfile('# syntax=docker/dockerfile:1\n# a comment\n# escape=`\nFROM alpine:3.20\n');
    assert.deepEqual(df.directives, { syntax: 'docker/dockerfile:1' });
    assert.equal(df.escape, '\\');
  });

  it('reads heredocs, with <<- tab stripping and quoted (literal) markers', () => {
    const df = parseDockerfile(
      'FROM alpine:3.20\nRUN <<EOF\napk add --no-cache curl\necho done\nEOF\nCOPY <<-"CONF" /etc/app.conf\n\tkey=$VALUE\n\tCONF\nRUN echo after\n',
    );
    const [, run, copy, after] = df.instructions;
    assert.equal(run?.heredocs[0]?.body, 'apk add --no-cache curl\necho done\n');
    assert.equal(run?.endLine, 5);
    assert.equal(copy?.heredocs[0]?.body, 'key=$VALUE\n');
    assert.equal(copy?.heredocs[0]?.expand, false);
    assert.equal(copy?.heredocs[0]?.stripTabs, true);
    assert.equal(after?.line, 9);
    assert.match(runScript(run!), /apk add --no-cache curl/);
  });

  it('reads two heredocs on one line in order', () => {
    const df = parseDockerfile('FROM alpine\nCOPY <<A <<B /dst/\na\nA\nb\nB\nUSER app\n');
    assert.deepEqual(
      df.instructions[1]?.heredocs.map((h) => [h.name, h.body]),
      [
        ['A', 'a\n'],
        ['B', 'b\n'],
      ],
    );
    assert.equal(df.instructions[2]?.line, 7);
  });

  it('substitutes global ARGs in FROM, with defaults and --build-arg overrides', () => {
    const text = 'ARG PY=3.12\nARG VARIANT\nFROM python:${PY}-${VARIANT:-slim} AS base\nFROM base\n';
    assert.equal(parseDockerfile(text).stages[0]?.base, 'python:3.12-slim');
    const over = parseDockerfile(text, 'Dockerfile', { buildArgs: { PY: '3.11', VARIANT: 'bookworm' } });
    assert.equal(over.stages[0]?.base, 'python:3.11-bookworm');
    assert.equal(over.stages[1]?.parentStage, 0);
    assert.equal(over.stages[0]?.name, 'base');
  });

  it('records ARGs without a value as unresolved in FROM', () => {
    const df = parseDockerfile('ARG IMAGE\nFROM $IMAGE\n');
    assert.deepEqual(df.stages[0]?.unresolved, ['IMAGE']);
  });

  it('scopes ARG and ENV per stage, inherits them through FROM <stage>, ENV wins over ARG', () => {
    const df = parseDockerfile(
      [
        'ARG VERSION=1.0',
        'FROM alpine:3.20 AS build',
        'ARG VERSION',
        'ENV APP_HOME=/srv/app DIR="with space"',
        'WORKDIR $APP_HOME/${VERSION}',
        'FROM build AS test',
        'COPY x ${APP_HOME}/x',
        'FROM alpine:3.20',
        'WORKDIR ${APP_HOME:-/none}',
        'ENV LEGACY value with spaces',
        'LABEL v=$LEGACY',
      ].join('\n'),
    );
    assert.deepEqual(df.stages[0]?.instructions[3]?.words, ['/srv/app/1.0']);
    assert.equal(df.stages[0]?.instructions[3]?.vars.get('DIR'), 'with space');
    assert.deepEqual(df.stages[1]?.instructions[1]?.words, ['x', '/srv/app/x']);
    assert.deepEqual(df.stages[2]?.instructions[1]?.words, ['/none']);
    assert.deepEqual(df.stages[2]?.instructions[3]?.words, ['v=value with spaces']);
  });

  it('parses flags and the JSON form of COPY, and leaves invalid JSON as shell form', () => {
    const df = parseDockerfile(
      'FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nCOPY --from=b --chown=1000:1000 ["/out/app", "/usr/bin/app"]\nRUN --mount=type=cache,target=/root/.cache/go-build --mount=type=secret,id=tok go build\nCMD [not json]\n',
    );
    assert.equal(df.stages[0]?.platform, '$BUILDPLATFORM');
    const copy = df.instructions[1];
    assert.deepEqual(copy?.flags, { from: ['b'], chown: ['1000:1000'] });
    assert.deepEqual(copy?.words, ['/out/app', '/usr/bin/app']);
    assert.equal(df.instructions[2]?.flags.mount?.length, 2);
    assert.equal(df.instructions[3]?.json, undefined);
    assert.equal(df.instructions[3]?.args, '[not json]');
  });

  it('finds the stages that ship: the target and its FROM ancestors', () => {
    const df = parseDockerfile('FROM a AS one\nFROM b AS two\nFROM two AS three\nFROM c\n');
    assert.deepEqual([...shippedStages(df)], [3]);
    assert.deepEqual([...shippedStages(df, 'three')].sort(), [1, 2]);
    assert.throws(
      () => shippedStages(df, 'nope'),
      (e: unknown) => e instanceof AnalyzeError,
    );
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['unknown instruction', 'FROM alpine\nRUNN echo\n', /:2: unknown instruction "RUNN"/],
    ['no FROM', '# only a comment\nARG X=1\n', /no FROM instruction/],
    ['instruction before FROM', 'RUN echo\nFROM alpine\n', /:1: RUN before the first FROM/],
    ['unterminated heredoc', 'FROM alpine\nRUN <<EOF\necho\n', /:2: heredoc <<EOF is not terminated/],
    ['bad escape', '# escape=x\nFROM alpine\n', /invalid escape directive "x"/],
    ['FROM with junk', 'FROM alpine AS a b\n', /FROM takes "IMAGE \[AS NAME\]"/],
    ['duplicate directive', '# escape=`\n# escape=\\\nFROM alpine\n', /given twice/],
  ];
  for (const [name, text, message] of invalid) {
    it(`rejects: ${name}`, () => {
      assert.throws(
        () => parseDockerfile(text, 'Dockerfile'),
        (e: unknown) =>
          e instanceof AnalyzeError && e.code === 'DOCKERFILE_INVALID' && message.test(e.message),
      );
    });
  }
});

describe('word splitting and substitution', () => {
  const vars = new Map([
    ['A', 'x'],
    ['EMPTY', ''],
  ]);
  const cases: Array<[string, string[]]> = [
    ['$A ${A}y', ['x', 'xy']],
    ['\'$A\' "$A"', ['$A', 'x']],
    ['\\$A', ['$A']],
    ['${EMPTY:-d} ${EMPTY-d} ${A:+alt} ${NOPE+alt}', ['d', 'alt']],
    ['"a b" c', ['a b', 'c']],
    ['${NOPE:-${A}z}', ['xz']],
    ['cost$', ['cost$']],
  ];
  for (const [input, words] of cases) {
    it(input, () => assert.deepEqual(splitWords(input, vars).words, words));
  }
  it('reports unresolved variables', () => {
    assert.deepEqual(splitWords('$NOPE ${ALSO} ${X:-d}', vars).unresolved, ['NOPE', 'ALSO']);
  });
});

describe('shell command splitting', () => {
  it('finds simple commands through &&, ;, pipes, wrappers and assignments', () => {
    const cmds = splitCommands(
      'set -eux; DEBIAN_FRONTEND=noninteractive sudo apt-get install -y "curl" \\\n && curl -fsSL x | sh # trailing\n/usr/bin/pip3 install -r req.txt',
    );
    assert.deepEqual(
      cmds.map((c) => [c.program, c.args.join(' ')]),
      [
        ['set', '-eux'],
        ['apt-get', 'install -y curl'],
        ['curl', '-fsSL x'],
        ['sh', ''],
        ['pip3', 'install -r req.txt'],
      ],
    );
  });
});

describe('.dockerignore', () => {
  const ignore = new DockerIgnore('# comment\n.git\n**/*.log\n/build\n*.env\n!keep.env\nnode_modules/\n');
  const cases: Array<[string, boolean]> = [
    ['.git/config', true],
    ['src/a.log', true],
    ['a.log', true],
    ['build/out.bin', true],
    ['src/build/x', false],
    ['prod.env', true],
    ['keep.env', false],
    ['node_modules/x/index.js', true],
    ['src/main.py', false],
  ];
  for (const [path, ignored] of cases) {
    it(`${path} ${ignored ? 'is' : 'is not'} ignored`, () => assert.equal(ignore.ignores(path), ignored));
  }
});
