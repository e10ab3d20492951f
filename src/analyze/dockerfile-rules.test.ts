import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BuildContext } from './build-context.js';
import { parseDockerfile } from './dockerfile-parser.js';
import { lintDockerfile } from './dockerfile-rules.js';
import { hasFindingAtOrAbove } from './findings.js';

const PIN = '@sha256:' + 'a'.repeat(64);

interface Case {
  name: string;
  dockerfile: string;
  /** Exact findings expected, as `rule@line`. */
  expect: string[];
  files?: Array<[string, number]>;
  dockerignore?: boolean;
  target?: string;
}

const cases: Case[] = [
  {
    name: "the guide's BAD example: COPY . before pip install -r",
    dockerfile: 'FROM python:3.12-slim\nCOPY . /app\nRUN pip install -r /app/requirements.txt\n',
    expect: ['base-image-unpinned@1', 'source-before-dependencies@2', 'pip-cache-left@3'],
  },
  {
    name: "the guide's GOOD example",
    dockerfile: `FROM python:3.12-slim${PIN}

# Layer 1: System deps (rarely changes)
RUN apt-get update && apt-get install -y --no-install-recommends \\
    libpq-dev && rm -rf /var/lib/apt/lists/*

# Layer 2: Python deps (changes when requirements.txt changes)
COPY requirements.txt /app/
RUN pip install --no-cache-dir -r /app/requirements.txt

# Layer 3: Application code (changes frequently, but layer is small)
COPY . /app
WORKDIR /app
CMD ["python", "main.py"]
`,
    expect: [],
  },
  {
    name: 'node: COPY . . then npm ci, cache left',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY . .\nRUN npm ci\nCMD ["node", "server.js"]\n`,
    expect: ['source-before-dependencies@3', 'npm-cache-left@4'],
  },
  {
    name: 'node done right: manifests first, cache mount',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN --mount=type=cache,target=/root/.npm npm ci\nCOPY . .\nRUN npm run build\n`,
    expect: [],
  },
  {
    name: 'go: COPY . . then go mod download in a builder stage (warning), scratch final',
    dockerfile: `FROM golang:1.22${PIN} AS build\nWORKDIR /src\nCOPY . .\nRUN go mod download\nRUN go build -o /app\nFROM scratch\nCOPY --from=build /app /app\n`,
    expect: ['source-before-dependencies@3'],
  },
  {
    name: 'ruby: bundle install after ADD . (ADD of local dir too)',
    dockerfile: `FROM ruby:3.3${PIN}\nADD . /app\nRUN bundle install\n`,
    expect: ['add-local-file@2', 'source-before-dependencies@2'],
  },
  {
    name: 'second install after the source is fine when deps were installed first',
    dockerfile: `FROM python:3.12${PIN}\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\nRUN pip install --no-cache-dir -e .\n`,
    expect: [],
  },
  {
    name: 'pip install --no-deps . after the source is fine',
    dockerfile: `FROM python:3.12${PIN}\nCOPY . .\nRUN pip install --no-cache-dir --no-deps .\n`,
    expect: [],
  },
  {
    name: 'apt without cleanup or --no-install-recommends',
    dockerfile: `FROM debian:12${PIN}\nRUN apt-get update && apt-get install -y curl\n`,
    expect: ['apt-lists-left@2', 'no-install-recommends@2'],
  },
  {
    name: 'apt with a cache mount and APT::Install-Recommends=false',
    dockerfile: `FROM debian:12${PIN}\nRUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y -o APT::Install-Recommends=false curl\n`,
    expect: [],
  },
  {
    name: 'apt cleanup in a later RUN does not help (and two RUNs)',
    dockerfile: `FROM ubuntu:24.04${PIN}\nRUN apt-get update && apt-get install -y --no-install-recommends git\nRUN rm -rf /var/lib/apt/lists/*\n`,
    expect: ['apt-lists-left@2', 'consecutive-run@3'],
  },
  {
    name: 'apk add without --no-cache; with --no-cache is fine',
    dockerfile: `FROM alpine:3.20${PIN}\nRUN apk add curl\nUSER nobody\nRUN apk add --no-cache git\n`,
    expect: ['apk-cache-left@2'],
  },
  {
    name: 'pip cache off through ENV PIP_NO_CACHE_DIR',
    dockerfile: `FROM python:3.12${PIN}\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n`,
    expect: [],
  },
  {
    name: 'python -m pip and uv pip without cache flags',
    dockerfile: `FROM python:3.12${PIN}\nRUN python3 -m pip install flask\nWORKDIR /x\nRUN uv pip install --system flask\n`,
    expect: ['pip-cache-left@2', 'pip-cache-left@4'],
  },
  {
    name: 'yarn and dnf caches',
    dockerfile: `FROM fedora:40${PIN}\nRUN dnf install -y nodejs && npm i -g yarn\nWORKDIR /a\nRUN yarn install --frozen-lockfile\n`,
    expect: ['yum-cache-left@2', 'npm-cache-left@2', 'yarn-cache-left@4'],
  },
  {
    name: 'yum cleaned in the same RUN',
    dockerfile: `FROM rockylinux:9${PIN}\nRUN yum install -y git && yum clean all\n`,
    expect: [],
  },
  {
    name: 'caches in a builder stage that does not ship are not reported',
    dockerfile: `FROM debian:12${PIN} AS build\nRUN apt-get update && apt-get install -y gcc\nFROM gcr.io/distroless/base${PIN}\nCOPY --from=build /out /out\n`,
    expect: [],
  },
  {
    name: 'caches in a stage the final one builds FROM are reported',
    dockerfile: `FROM debian:12${PIN} AS base\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM base\nCMD ["gcc"]\n`,
    expect: ['apt-lists-left@2'],
  },
  {
    name: 'latest, no tag, and ARG without a default',
    dockerfile: 'ARG BASE\nFROM ubuntu\nFROM nginx:latest\nFROM $BASE\n',
    expect: ['base-image-latest@2', 'base-image-latest@3', 'base-image-arg@4'],
  },
  {
    name: 'ARG with a default is resolved; --build-arg style override',
    dockerfile: 'ARG TAG=3.20\nFROM alpine:${TAG}\n',
    expect: ['base-image-unpinned@2'],
  },
  {
    name: 'ADD of an archive and of a URL are fine; a local file is not',
    dockerfile: `FROM alpine:3.20${PIN}\nADD rootfs.tar.gz /\nADD https://example.com/x.bin /x.bin\nADD config.yaml /etc/app/\n`,
    expect: ['add-local-file@4'],
  },
  {
    name: 'three consecutive RUNs make one finding at the second',
    dockerfile: `FROM alpine:3.20${PIN}\nRUN echo a\nRUN echo b\nRUN echo c\nCOPY x /x\nRUN echo d\n`,
    expect: ['consecutive-run@3'],
  },
  {
    name: 'secrets named in COPY, and ARG/ENV with secret names',
    dockerfile: `FROM alpine:3.20${PIN}\nCOPY .env id_rsa /root/\nCOPY certs/server.key /etc/ssl/\nARG NPM_TOKEN\nENV DB_PASSWORD=hunter2\nCOPY .env.example /app/\n`,
    expect: ['secret-copied@2', 'secret-copied@3', 'secret-in-arg-env@4', 'secret-in-arg-env@5'],
  },
  {
    name: 'COPY . without .dockerignore, with a secret and a large file in the context',
    dockerfile: `FROM alpine:3.20${PIN}\nWORKDIR /app\nCOPY . .\n`,
    files: [
      ['main.py', 100],
      ['.aws/credentials', 50],
      ['data/model.bin', 200 * 1024 * 1024],
    ],
    dockerignore: false,
    expect: ['secret-copied@3', 'missing-dockerignore@3', 'large-file-copied@3'],
  },
  {
    name: 'COPY . with .dockerignore and a clean context',
    dockerfile: `FROM alpine:3.20${PIN}\nCOPY . /app\n`,
    files: [['main.py', 100]],
    dockerignore: true,
    expect: [],
  },
  {
    name: 'explicit large file copied through a glob',
    dockerfile: `FROM alpine:3.20${PIN}\nCOPY models/*.onnx /models/\n`,
    files: [
      ['models/big.onnx', 3 * 1024 * 1024 * 1024],
      ['models/readme.md', 10],
    ],
    dockerignore: true,
    expect: ['large-file-copied@2'],
  },
  {
    name: 'heredoc RUN is analysed like a shell-form RUN',
    dockerfile: `FROM debian:12${PIN}\nRUN <<EOF\nset -e\napt-get update\napt-get install -y --no-install-recommends curl\nEOF\n`,
    expect: ['apt-lists-left@2'],
  },
  {
    name: '--target picks the stage that ships',
    dockerfile: `FROM debian:12${PIN} AS dev\nRUN apt-get update && apt-get install -y --no-install-recommends vim\nFROM debian:12${PIN} AS prod\nCMD ["true"]\n`,
    target: 'dev',
    expect: ['apt-lists-left@2'],
  },
  {
    name: 'JSON-form COPY of the context before npm install',
    dockerfile: `FROM node:20${PIN}\nCOPY [".", "/app"]\nRUN cd /app && npm install && npm cache clean --force\n`,
    expect: ['source-before-dependencies@2'],
  },
  {
    name: 'npm install of named packages does not depend on the source',
    dockerfile: `FROM node:20${PIN}\nCOPY . .\nRUN npm install -g pm2 && npm cache clean --force\n`,
    expect: [],
  },
];

function contextOf(c: Case): BuildContext | undefined {
  if (c.files === undefined && c.dockerignore === undefined) return undefined;
  return {
    dir: '/ctx',
    dockerignore: c.dockerignore ? '/ctx/.dockerignore' : undefined,
    files: (c.files ?? []).map(([path, size]) => ({ path, size })),
    truncated: false,
  };
}

describe('Dockerfile rules', () => {
  for (const c of cases) {
    it(c.name, () => {
      const df = parseDockerfile(c.dockerfile);
      const findings = lintDockerfile(df, contextOf(c), c.target ? { target: c.target } : {});
      assert.deepEqual(
        findings.map((f) => `${f.rule}@${f.line}`).sort(),
        [...c.expect].sort(),
        JSON.stringify(findings, null, 1),
      );
      for (const f of findings) {
        assert.ok(f.message.length > 10 && !f.message.includes('\n'), `one-line message: ${f.message}`);
        assert.ok(f.fix.length > 5 && !f.fix.includes('\n'), `one-line fix: ${f.fix}`);
      }
    });
  }

  it('rates the cache-buster an error in the shipped stage and a warning in a builder stage', () => {
    const shipped = lintDockerfile(parseDockerfile('FROM python:3.12\nCOPY . .\nRUN pip install -r r.txt\n'));
    assert.equal(shipped.find((f) => f.rule === 'source-before-dependencies')?.severity, 'error');
    const builder = lintDockerfile(
      parseDockerfile('FROM golang:1.22 AS b\nCOPY . .\nRUN go mod download\nFROM scratch\n'),
    );
    assert.equal(builder.find((f) => f.rule === 'source-before-dependencies')?.severity, 'warning');
  });

  it('--fail-on thresholds', () => {
    const findings = lintDockerfile(parseDockerfile('FROM alpine:3.20\nRUN apk add curl\n'));
    assert.deepEqual(
      findings.map((f) => f.severity),
      ['info', 'warning'],
    );
    assert.equal(hasFindingAtOrAbove(findings, 'error'), false);
    assert.equal(hasFindingAtOrAbove(findings, 'warning'), true);
    assert.equal(hasFindingAtOrAbove(findings, 'info'), true);
  });
});
