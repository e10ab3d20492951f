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
    expect: ['pip-cache-left@2', 'uv-cache-left@4'],
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
  // Issue 11 item 4: empty values and *_FILE paths are not secrets.
  {
    name: 'secret-in-arg-env: empty values and *_FILE paths are not secrets',
    dockerfile: `FROM python:3.12${PIN}\nENV OPENAI_API_KEY="" WEBUI_SECRET_KEY=''\nARG TOKEN=\nENV DB_PASSWORD_FILE=/run/secrets/db\nENV HF_TOKEN_PATH=/run/secrets/hf\nARG GITHUB_TOKEN\nENV API_KEY=\${GITHUB_TOKEN}\nENV LEGACY_SECRET s3cr3t\n`,
    expect: ['secret-in-arg-env@6', 'secret-in-arg-env@7', 'secret-in-arg-env@8'],
  },
  // Issue 11 item 5: uv's cache flags and commands.
  {
    name: 'uv pip install with --no-cache-dir, -n or --no-cache leaves no cache',
    dockerfile: `FROM python:3.12${PIN}\nRUN uv pip install --system --no-cache-dir -r requirements.txt\nWORKDIR /a\nRUN uv pip install -n flask\nWORKDIR /b\nRUN uv pip install --no-cache --system torch\nWORKDIR /c\nRUN UV_NO_CACHE=1 uv sync --frozen\n`,
    expect: [],
  },
  {
    name: 'uv sync and uv pip install without no-cache leave the uv cache, with a uv fix',
    dockerfile: `FROM python:3.12${PIN}\nCOPY pyproject.toml uv.lock ./\nRUN uv sync --frozen\nWORKDIR /x\nRUN uv pip install --system flask\n`,
    expect: ['uv-cache-left@3', 'uv-cache-left@5'],
  },
  {
    name: 'uv with a cache mount, UV_CACHE_DIR mount, ENV UV_NO_CACHE or uv cache clean is fine',
    dockerfile: `FROM python:3.12${PIN}\nRUN --mount=type=cache,target=/root/.cache/uv uv sync\nENV UV_CACHE_DIR=/uvc\nRUN --mount=type=cache,target=/uvc uv sync\nWORKDIR /a\nRUN uv sync && uv cache clean\nENV UV_NO_CACHE=1\nRUN uv pip install flask\n`,
    expect: [],
  },
  // Issue 11 item 6: partial source copies, conda.
  {
    name: 'COPY server server before RUN cd server && npm ci',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY server server\nRUN cd server && npm ci && npm cache clean --force\n`,
    expect: ['source-before-dependencies@3'],
  },
  {
    name: 'COPY src/ /app/src then WORKDIR into it and pip install -r',
    dockerfile: `FROM python:3.12${PIN}\nCOPY src/ /app/src\nWORKDIR /app/src\nRUN pip install --no-cache-dir -r requirements.txt\n`,
    expect: ['source-before-dependencies@2'],
  },
  {
    name: 'manifests of a sub-project first, then its source, is fine',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY server/package.json server/package-lock.json server/\nRUN cd server && npm ci && npm cache clean --force\nCOPY server server\nRUN cd server && npm run build\n`,
    expect: [],
  },
  {
    name: 'a second sub-project copied whole before its install is reported even after a first one done right',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY web/package.json web/package-lock.json web/\nRUN cd web && npm ci && npm cache clean --force\nCOPY api api\nRUN cd api && npm ci && npm cache clean --force\n`,
    expect: ['source-before-dependencies@5'],
  },
  {
    name: 'a copied directory the install does not run in is not a cache bust',
    dockerfile: `FROM python:3.12${PIN}\nWORKDIR /app\nCOPY scripts/ /opt/scripts\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n`,
    expect: [],
  },
  {
    name: 'COPY * ./ is a whole-context copy; the reported line is the copy that busts the cache',
    dockerfile: `FROM node:20${PIN}\nWORKDIR /app\nCOPY package.json ./\nCOPY * ./\nRUN npm install && npm cache clean --force\n`,
    expect: ['source-before-dependencies@4'],
  },
  {
    name: 'conda env create -f after COPY . is a cache bust; a rootfs overlay copied to / is not',
    dockerfile: `FROM continuumio/miniconda3:24.1.2-0${PIN}\nWORKDIR /app\nCOPY . .\nRUN conda env create -f environment.yml && conda clean -afy\nFROM python:3.12${PIN}\nCOPY rootfs/ /\nRUN pip install --no-cache-dir -r /requirements.txt\n`,
    expect: ['source-before-dependencies@3'],
  },
  {
    name: 'conda install without conda clean in the same RUN',
    dockerfile: `FROM continuumio/miniconda3:24.1.2-0${PIN}\nRUN conda install -y numpy\nWORKDIR /a\nRUN conda install -y scipy && conda clean -afy\nWORKDIR /b\nRUN mamba install -y pandas\nWORKDIR /c\nRUN conda install -y six\nRUN conda clean -afy\n`,
    expect: ['conda-cache-left@2', 'conda-cache-left@6', 'conda-cache-left@8', 'consecutive-run@9'],
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

  // Issue 11 item 3: the fix names the image as written, registry, port and flags included.
  it('base-image-latest fix keeps the registry, port, --platform and stage name', () => {
    const fixes: Array<[string, string]> = [
      ['FROM gcr.io/distroless/static', 'FROM gcr.io/distroless/static:<version>@sha256:<digest>'],
      [
        'FROM quay.io/jupyter/base-notebook:latest',
        'FROM quay.io/jupyter/base-notebook:<version>@sha256:<digest>',
      ],
      ['FROM nvcr.io/nvidia/pytorch', 'FROM nvcr.io/nvidia/pytorch:<version>@sha256:<digest>'],
      ['FROM localhost:5000/team/base:latest', 'FROM localhost:5000/team/base:<version>@sha256:<digest>'],
      ['FROM docker.io/library/ubuntu', 'FROM docker.io/library/ubuntu:<version>@sha256:<digest>'],
      ['FROM ubuntu', 'FROM ubuntu:<version>@sha256:<digest>'],
      [
        'FROM --platform=$BUILDPLATFORM gcr.io/distroless/static AS Runtime',
        'FROM --platform=$BUILDPLATFORM gcr.io/distroless/static:<version>@sha256:<digest> AS Runtime',
      ],
    ];
    for (const [from, fix] of fixes) {
      const [f] = lintDockerfile(parseDockerfile(`${from}\n`));
      assert.equal(f?.rule, 'base-image-latest', from);
      assert.equal(f?.fix, `pin a version and digest: ${fix}`, from);
    }
    const [pinnedByTag] = lintDockerfile(
      parseDockerfile('FROM --platform=linux/arm64 nvcr.io/nvidia/cuda:12.4.1-base\n'),
    );
    assert.equal(pinnedByTag?.rule, 'base-image-unpinned');
    assert.match(
      pinnedByTag?.fix ?? '',
      /FROM --platform=linux\/arm64 nvcr\.io\/nvidia\/cuda:12\.4\.1-base@sha256:<digest>/,
    );
    // A digest pins it whatever the tag says.
    assert.deepEqual(lintDockerfile(parseDockerfile(`FROM gcr.io/distroless/static:latest${PIN}\n`)), []);
  });

  it('uv-cache-left gives a uv fix, never a pip-only one', () => {
    const [f] = lintDockerfile(parseDockerfile(`FROM python:3.12${PIN}\nRUN uv sync --frozen\n`));
    assert.equal(f?.rule, 'uv-cache-left');
    assert.match(f?.fix ?? '', /UV_NO_CACHE=1/);
    assert.match(f?.fix ?? '', /\/root\/\.cache\/uv/);
    assert.doesNotMatch(f?.fix ?? '', /--no-cache-dir|PIP_NO_CACHE_DIR/);
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
