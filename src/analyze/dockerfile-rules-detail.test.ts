// The Dockerfile rules in detail: what each finding says (its message and fix are what users
// read, with line numbers, names and sizes filled in), which paths count as secrets, which
// copies count as a directory of source, and the size threshold for large files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BuildContext } from './build-context.js';
import { parseDockerfile } from './dockerfile-parser.js';
import { isSecretPath, lintDockerfile, type LintOptions } from './dockerfile-rules.js';
import type { Finding } from './findings.js';

const PIN = '@sha256:' + 'a'.repeat(64);

function lint(dockerfile: string, files?: Array<[string, number]>, opts: LintOptions = {}): Finding[] {
  const ctx: BuildContext | undefined = files
    ? {
        dir: '/ctx',
        dockerignore: undefined,
        files: files.map(([path, size]) => ({ path, size })),
        truncated: false,
      }
    : undefined;
  return lintDockerfile(parseDockerfile(dockerfile), ctx, opts);
}

const said = (findings: Finding[]) => findings.map((f) => [f.rule, f.line, f.severity, f.message, f.fix]);

describe('isSecretPath', () => {
  const secrets = [
    '.env',
    '.env.local',
    '.env.production.local',
    'app/.ENV',
    'id_rsa',
    'id_dsa',
    'id_ecdsa',
    'home/u/id_ed25519',
    '.npmrc',
    '.pypirc',
    '.netrc',
    '.git-credentials',
    '.htpasswd',
    'credentials',
    'gcp/credentials.json',
    'kubeconfig',
    'tls/server.pem',
    'tls/server.KEY',
    'cert.p12',
    'cert.pfx',
    'java/app.jks',
    'java/app.keystore',
    '.ssh/known_hosts',
    'root/.ssh/config',
    '.aws/config',
    'home/u/.gnupg/pubring.kbx',
    '.docker/config.json',
    'root/.docker/config.json',
    '.kube/config',
    'home/u/.kube/config',
  ];
  const notSecrets = [
    '.env.example',
    '.env.sample',
    '.env.template',
    '.env.dist',
    'app/.env.example',
    '.envrc.d',
    'env',
    'my.env.txt',
    'id_rsa.pub',
    'id_rsa_backup',
    'xid_rsa',
    '.npmrc.example',
    'credentials.yaml',
    'mycredentials',
    'kubeconfig.yaml',
    'server.pem.txt',
    'keys.txt',
    'monkey',
    'a.ssh/config',
    '.sshd/config',
    'x.aws/config',
    '.docker/config.json.bak',
    '.docker/daemon.json',
    'my.docker/config.json',
    '.kube/config.d',
    '.kube/cache/x',
    'x.kube/config',
  ];
  it('names the files that hold secrets', () => {
    assert.deepEqual(
      secrets.filter((p) => !isSecretPath(p)),
      [],
    );
  });
  it('leaves look-alikes alone', () => {
    assert.deepEqual(
      notSecrets.filter((p) => isSecretPath(p)),
      [],
    );
  });
});

describe('Dockerfile findings as users read them', () => {
  it('base images: ARG without default, an invalid reference, scratch and stage names skipped', () => {
    const findings = lint(
      'ARG BASE\nARG TAG\nFROM $BASE:$TAG\nFROM Not_Valid::x\nFROM scratch\nFROM SCRATCH\nFROM alpine:3.20 AS Base\nFROM base\nFROM BASE\n',
    );
    assert.deepEqual(said(findings), [
      [
        'base-image-arg',
        3,
        'info',
        'base image "$BASE:$TAG" depends on ARG BASE, TAG with no default',
        'give the ARG a default before the first FROM (ARG BASE=...) or pass --build-arg',
      ],
      [
        'base-image-invalid',
        4,
        'error',
        'FROM "Not_Valid::x": image reference "Not_Valid::x" has an invalid repository "library/Not_Valid:" (lowercase letters, digits and . _ - / only)',
        'fix the image reference',
      ],
      [
        'base-image-unpinned',
        7,
        'info',
        'base image "alpine:3.20" is pinned by tag only',
        'pin the digest too: FROM alpine:3.20@sha256:<digest> AS Base (skopeo inspect docker://alpine:3.20 shows it)',
      ],
    ]);
  });

  it('base-image-latest says whether the tag is latest or missing', () => {
    const [latest] = lint('FROM nginx:latest\n');
    const [none] = lint('FROM nginx\n');
    assert.equal(latest?.message, 'base image "nginx:latest" uses the latest tag, which moves');
    assert.equal(none?.message, 'base image "nginx" uses no tag (latest), which moves');
  });

  it('consecutive-run lists the lines, only in a stage that ships', () => {
    const findings = lint(
      `FROM alpine:3.20${PIN} AS build\nRUN a\nRUN b\nFROM alpine:3.20${PIN}\nRUN c\nRUN d\nRUN e\nCOPY --from=build /x /x\nRUN f\n`,
    );
    assert.deepEqual(said(findings), [
      [
        'consecutive-run',
        6,
        'info',
        '3 consecutive RUN instructions (lines 5, 6, 7) make 3 layers',
        'join them into one RUN with && (cleanup in a later RUN does not shrink an earlier layer)',
      ],
    ]);
  });

  it('add-local-file names one file, or says files, and gives the COPY to write', () => {
    const findings = lint(`FROM alpine:3.20${PIN}\nADD a.txt /x\nADD a.txt b.txt /y/\n`);
    assert.deepEqual(
      findings.map((f) => [f.line, f.message, f.fix]),
      [
        [2, 'ADD of local "a.txt"; ADD also fetches URLs and unpacks archives', 'use COPY a.txt /x'],
        [3, 'ADD of local files; ADD also fetches URLs and unpacks archives', 'use COPY a.txt b.txt /y/'],
      ],
    );
  });

  it('secret-in-arg-env names the variable', () => {
    const [f] = lint(`FROM alpine:3.20${PIN}\nENV A=1 DB_PASSWORD=x\n`);
    assert.deepEqual(
      [f?.message, f?.fix],
      [
        'ENV DB_PASSWORD puts a secret into the image config and history',
        'pass it with RUN --mount=type=secret,id=... (docker build --secret) instead',
      ],
    );
  });

  it('source-before-dependencies for the whole source and for a directory', () => {
    const whole = lint(
      `FROM python:3.12${PIN}\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n`,
    );
    assert.deepEqual(said(whole), [
      [
        'source-before-dependencies',
        2,
        'error',
        'COPY of the whole source (line 2) comes before "pip install --no-cache-dir -r requirements.txt" (line 3): every code change re-runs the install and changes the dependency layer every node pulls',
        'copy only requirements.txt (or pyproject.toml) first, run the install, then COPY the rest of the source',
      ],
    ]);
    const dir = lint(
      `FROM node:20${PIN}\nWORKDIR /app\nCOPY server server\nRUN cd server && npm ci && npm cache clean --force\n`,
    );
    assert.deepEqual(said(dir), [
      [
        'source-before-dependencies',
        3,
        'error',
        'COPY of server (line 3) comes before "npm ci" (line 4), which runs in /app/server: every change there re-runs the install and changes the dependency layer every node pulls',
        'copy only package.json and package-lock.json from server first, run the install, then COPY the rest of server',
      ],
    ]);
  });

  it('the whole context: secrets (three named, the rest counted), large files by size, no .dockerignore once', () => {
    const files: Array<[string, number]> = [
      ['main.py', 999],
      ['.env', 3],
      ['k/id_rsa', 1],
      ['k/tls.key', 1],
      ['k/x.pem', 1],
      ['big1', 60e6],
      ['big2', 70e6],
      ['big3', 5e9],
      ['big4', 2e15],
    ];
    const findings = lint(`FROM alpine:3.20${PIN}\nCOPY . /app\nCOPY . /app2\n`, files);
    const line2 = findings.filter((f) => f.line === 2);
    assert.deepEqual(said(line2), [
      [
        'secret-copied',
        2,
        'error',
        'COPY puts .env, k/id_rsa, k/tls.key and 1 more into the image',
        'add them to .dockerignore and pass secrets with RUN --mount=type=secret',
      ],
      [
        'large-file-copied',
        2,
        'warning',
        'COPY copies big4 (2000 TB), big3 (5.0 GB), big2 (70.0 MB) and 1 more',
        'exclude it in .dockerignore and COPY it in its own layer before the source, or fetch it at run time',
      ],
      [
        'missing-dockerignore',
        2,
        'warning',
        'COPY . sends the whole context (9 files, 2000 TB) with no .dockerignore',
        'add a .dockerignore next to the Dockerfile listing .git, build output, local env files and data',
      ],
    ]);
    assert.deepEqual(
      findings.filter((f) => f.line === 3).map((f) => f.rule),
      ['secret-copied', 'large-file-copied'],
      'no .dockerignore is said once',
    );
  });

  it('sizes: bytes whole, then one decimal below 100 of a unit', () => {
    const total = (files: Array<[string, number]>) =>
      lint(`FROM alpine:3.20${PIN}\nCOPY . /app\n`, files).find((f) => f.rule === 'missing-dockerignore')
        ?.message;
    assert.match(total([['a', 999]]) ?? '', /\(1 files, 999 B\)/);
    assert.match(total([['a', 1000]]) ?? '', /\(1 files, 1\.0 KB\)/);
    assert.match(total([['a', 1550]]) ?? '', /\(1 files, 1\.6 KB\)/);
    assert.match(total([['a', 99_900]]) ?? '', /\(1 files, 99\.9 KB\)/);
    assert.match(total([['a', 100_000]]) ?? '', /\(1 files, 100 KB\)/);
    assert.match(total([['a', 999_499]]) ?? '', /\(1 files, 999 KB\)/);
    assert.match(total([['a', 1e12]]) ?? '', /\(1 files, 1\.0 TB\)/);
  });

  it('large files: from the threshold up, each counted once, a named file with its own fix', () => {
    const files: Array<[string, number]> = [
      ['models/a.bin', 1000],
      ['models/b.bin', 999],
      ['models/c.bin', 2000],
    ];
    const opts = { largeFileBytes: 1000 };
    const [f] = lint(`FROM alpine:3.20${PIN}\nCOPY models models/a.bin /m/\n`, files, opts);
    assert.deepEqual(
      [f?.rule, f?.message, f?.fix],
      [
        'large-file-copied',
        'COPY copies models/c.bin (2.0 KB), models/a.bin (1.0 KB)',
        'keep it in its own early layer (it is re-pulled whenever a layer below changes), or fetch it at run time',
      ],
    );
    assert.deepEqual(lint(`FROM alpine:3.20${PIN}\nCOPY models/b.bin /m/\n`, files, opts), []);
    // The default threshold is 50 MiB.
    const big: Array<[string, number]> = [
      ['x', 50 * 1024 * 1024],
      ['y', 50 * 1024 * 1024 - 1],
    ];
    assert.deepEqual(
      lint(`FROM alpine:3.20${PIN}\nCOPY x /x\nCOPY y /y\n`, big).map((f) => `${f.rule}@${f.line}`),
      ['large-file-copied@2'],
    );
  });

  it('large files only in the stage that ships; secrets everywhere, a warning in a builder', () => {
    const files: Array<[string, number]> = [
      ['data.bin', 100e6],
      ['.env', 5],
    ];
    const findings = lint(
      `FROM alpine:3.20${PIN} AS build\nCOPY data.bin .env /b/\nFROM alpine:3.20${PIN}\nCOPY --from=build /b /b\n`,
      files,
    );
    assert.deepEqual(
      findings.map((f) => [f.rule, f.severity]),
      [['secret-copied', 'warning']],
    );
  });

  it('secrets in the context under a copied directory or glob, with duplicates said once', () => {
    const files: Array<[string, number]> = [
      ['conf/app.yaml', 10],
      ['conf/.env', 10],
      ['conference/.env', 10],
      ['keys/a.pem', 10],
      ['keys/b.txt', 10],
    ];
    const findings = lint(
      `FROM alpine:3.20${PIN}\nCOPY conf /conf\nCOPY keys/* conf/.env /k/\nCOPY conf/app.yaml /a\n`,
      files,
    );
    assert.deepEqual(
      findings.map((f) => [f.line, f.message]),
      [
        [2, 'COPY puts conf/.env into the image'],
        [3, 'COPY puts conf/.env, keys/a.pem into the image'],
      ],
    );
  });
});

describe('which copies are a directory of source', () => {
  /** Whether COPY `src` before an npm ci in its destination is reported. */
  const busts = (copy: string, files?: Array<[string, number]>) =>
    lint(
      `FROM node:20${PIN}\nWORKDIR /app\nCOPY ${copy} web\nRUN cd web && npm ci && npm cache clean --force\n`,
      files,
    ).some((f) => f.rule === 'source-before-dependencies');

  it('without a build context, by name', () => {
    assert.equal(busts('web'), true, 'a name without extension');
    assert.equal(busts('web/'), true, 'a trailing slash');
    assert.equal(busts('./web.d/'), true, 'a trailing slash, even with a dot');
    assert.equal(busts('web.tgz'), false, 'a name with an extension is a file');
    assert.equal(busts('Makefile'), false, 'a known file without extension');
    assert.equal(busts('requirements'), false, 'a directory of manifests by its name');
    assert.equal(busts('deps/'), false);
    assert.equal(busts('src/*'), false, 'a glob');
  });

  it('with a build context, by what it holds', () => {
    const files: Array<[string, number]> = [
      ['web/index.js', 10],
      ['web/package.json', 10],
      ['locks/package-lock.json', 10],
      ['locks/yarn.lock', 10],
      ['lib', 10],
      ['Procfile.d/web', 10],
    ];
    assert.equal(busts('web', files), true);
    assert.equal(busts('locks', files), false, 'manifests only');
    assert.equal(busts('lib', files), false, 'a file, not a directory');
    assert.equal(busts('empty', files), false, 'nothing under it');
    assert.equal(busts('Procfile.d', files), true, 'a directory whatever its name');
  });

  it('a copy into / overlays configuration; a stage starts in the WORKDIR of its parent', () => {
    assert.equal(
      lint(`FROM node:20${PIN}\nCOPY rootfs/ /\nRUN npm ci && npm cache clean --force\n`).some(
        (f) => f.rule === 'source-before-dependencies',
      ),
      false,
    );
    const findings = lint(
      `FROM node:20${PIN} AS base\nWORKDIR /srv\nFROM base\nCOPY api api\nRUN cd api && npm ci && npm cache clean --force\n`,
    );
    assert.deepEqual(
      findings.map((f) => [f.rule, f.line, f.message.includes('runs in /srv/api')]),
      [['source-before-dependencies', 4, true]],
    );
  });
});

describe('the name lists behind the rules', () => {
  const findingsOf = (dockerfile: string, files?: Array<[string, number]>) =>
    lint(`FROM alpine:3.20${PIN}\n${dockerfile}\n`, files).map((f) => f.rule);

  it('ADD of an archive or a remote source is not a local file', () => {
    const notLocal = [
      'a.tar',
      'a.tar.gz',
      'a.tar.bz2',
      'a.tar.xz',
      'a.tar.zst',
      'a.tgz',
      'a.TGZ',
      'a.tbz',
      'a.tbz2',
      'a.txz',
      'a.tzst',
      'http://example.com/x.bin',
      'https://example.com/x.bin',
      'git@github.com:org/repo.git',
      'git://example.com/repo',
      'https://github.com/org/repo.git#main',
      'vendored.git',
    ];
    const local = [
      'a.tar.gz.sig',
      'a.tgz.txt',
      'tar',
      'a.zip',
      'https.txt',
      'x.git.bak',
      'notgit@host',
      'mygit://x',
    ];
    assert.deepEqual(
      notLocal.filter((src) => findingsOf(`ADD ${src} /x/`).includes('add-local-file')),
      [],
    );
    assert.deepEqual(
      local.filter((src) => !findingsOf(`ADD ${src} /x/`).includes('add-local-file')),
      [],
    );
  });

  it('secret variable names, and the *_FILE, *_PATH, *_DIR names that only say where one is', () => {
    const secret = [
      'PASSWORD',
      'DB_PASSWORD',
      'db_passwd',
      'MY_SECRET',
      'SECRET_VALUE',
      'GITHUB_TOKEN',
      'API_KEY',
      'APIKEY',
      'OPENAI_API_KEY',
      'ACCESS_KEY',
      'AWS_ACCESSKEY_ID',
      'PRIVATE_KEY',
      'PRIVATEKEY',
      'CREDENTIALS',
      'GCP_CREDENTIAL',
      'TOKEN_FILENAME',
    ];
    const notSecret = [
      'TOKENIZER',
      'PASSWORDLESS',
      'SECRETARY',
      'MY_KEY',
      'KEYS',
      'PUBLIC_KEY',
      'DB_PASSWORD_FILE',
      'TOKEN_PATH',
      'SECRET_DIR',
      'secret_file',
      'NOTOKEN',
    ];
    const flagged = (name: string) => findingsOf(`ENV ${name}=x`).includes('secret-in-arg-env');
    assert.deepEqual(
      secret.filter((n) => !flagged(n)),
      [],
    );
    assert.deepEqual(
      notSecret.filter((n) => flagged(n)),
      [],
    );
    // In a stage that does not ship, nothing is said.
    assert.deepEqual(lint(`FROM alpine:3.20${PIN} AS b\nENV API_KEY=x\nFROM scratch\n`), []);
  });

  /** Whether COPY of directory `d` (holding only `file`) before an npm ci in it is reported. */
  const bustsWith = (file: string) =>
    lint(`FROM node:20${PIN}\nWORKDIR /app\nCOPY d d\nRUN cd d && npm ci && npm cache clean --force\n`, [
      [`d/${file}`, 1],
    ]).some((f) => f.rule === 'source-before-dependencies');

  it('a directory of dependency manifests only is not source', () => {
    const manifests = [
      'requirements.txt',
      'requirements-dev.txt',
      'requirements.in',
      'constraints.txt',
      'constraints-py3.txt',
      'package.json',
      'package-lock.json',
      'npm-shrinkwrap.json',
      'yarn.lock',
      'pnpm-lock.yaml',
      'pnpm-workspace.yaml',
      'bun.lockb',
      'bun.lock',
      'pyproject.toml',
      'poetry.lock',
      'uv.lock',
      'Pipfile',
      'Pipfile.lock',
      'setup.cfg',
      'go.mod',
      'go.sum',
      'Gemfile',
      'Gemfile.lock',
      'composer.json',
      'composer.lock',
      'Cargo.toml',
      'Cargo.lock',
      'pom.xml',
      'App.csproj',
      'mix.exs',
      'mix.lock',
      'environment.yml',
      'environment.yaml',
      '.npmrc',
      '.yarnrc',
      '.yarnrc.yml',
      'sub/go.mod',
      'PACKAGE.JSON',
    ];
    const source = [
      'requirements.py',
      'package.json.bak',
      'mygo.mod',
      'sub/mygo.mod',
      'yarn.locked',
      'index.js',
      'a/b.csproj.user',
      'constraints.md',
    ];
    assert.deepEqual(manifests.filter(bustsWith), []);
    assert.deepEqual(
      source.filter((f) => !bustsWith(f)),
      [],
    );
  });

  /** Whether COPY `src` into web, with no build context, before an npm ci in web is reported. */
  const bustsNamed = (src: string) =>
    lint(
      `FROM node:20${PIN}\nWORKDIR /app\nCOPY ${src} web\nRUN cd web && npm ci && npm cache clean --force\n`,
    ).some((f) => f.rule === 'source-before-dependencies');

  it('directories of manifests and files without extension, by name', () => {
    const manifestDirs = [
      'requirements',
      'reqs',
      'req',
      'deps',
      'dependencies',
      'constraints',
      'lock',
      'locks',
      'lockfile',
      'lockfiles',
      'manifest',
      'manifests',
      'Deps',
      'app/deps',
    ];
    const files = [
      'Gemfile',
      'Pipfile',
      'Makefile',
      'Dockerfile',
      'Containerfile',
      'Procfile',
      'Rakefile',
      'Brewfile',
      'Justfile',
      'Vagrantfile',
      'LICENSE',
      'README',
      'VERSION',
      'NOTICE',
      'AUTHORS',
      'CHANGELOG',
      'makefile',
    ];
    const dirs = ['requirement', 'depsx', 'mylocks', 'Makefiles', 'xREADME', 'src', 'app/server'];
    assert.deepEqual(manifestDirs.filter(bustsNamed), []);
    assert.deepEqual(files.filter(bustsNamed), []);
    assert.deepEqual(
      dirs.filter((d) => !bustsNamed(d)),
      [],
    );
  });

  it('the whole context, however it is written; a glob of files is not', () => {
    const whole = ['.', './', '*', './*', './/'];
    const cacheBust = (src: string) =>
      lint(`FROM node:20${PIN}\nCOPY ${src} /app/\nRUN npm ci && npm cache clean --force\n`).map(
        (f) => `${f.rule}@${f.line}`,
      );
    for (const src of whole) assert.deepEqual(cacheBust(src), ['source-before-dependencies@2'], src);
    assert.deepEqual(cacheBust('*.js'), []);
  });

  it('a COPY --from another stage brings nothing from the build context', () => {
    const files: Array<[string, number]> = [['.env', 10]];
    assert.deepEqual(
      lint(`FROM alpine:3.20${PIN} AS b\nFROM alpine:3.20${PIN}\nCOPY --from=b .env /x\n`, files),
      [],
    );
  });
});

describe('Dockerfile rules: cases the mutation run found untested', () => {
  const said2 = (dockerfile: string, files?: Array<[string, number]>, dockerignore = true) => {
    const ctx: BuildContext | undefined = files
      ? {
          dir: '/ctx',
          dockerignore: dockerignore ? '/ctx/.dockerignore' : undefined,
          files: files.map(([path, size]) => ({ path, size })),
          truncated: false,
        }
      : undefined;
    return lintDockerfile(parseDockerfile(`FROM node:20${PIN}\n${dockerfile}`), ctx).map(
      (f) => `${f.rule}@${f.line}:${f.severity}: ${f.message}`,
    );
  };
  const install = 'npm ci && npm cache clean --force';

  it('only COPY and ADD bring files in; a heredoc is no source', () => {
    assert.deepEqual(said2('RUN cp .env /tmp/x\nCMD ["cp", ".env", "/tmp/y"]\n', [['.env', 1]]), []);
    assert.deepEqual(said2(`WORKDIR /app\nCOPY <<EOF web\nhello\nEOF\nRUN cd web && ${install}\n`), []);
  });

  it('globs: *.py is not everything, conf* matches the directory config/', () => {
    assert.deepEqual(
      said2('COPY *.py /app/\n', [
        ['.env', 1],
        ['a.py', 1],
      ]),
      [],
    );
    assert.deepEqual(said2('COPY conf* /app/\n', [['config/.env', 1]]), [
      'secret-copied@2:error: COPY puts config/.env into the image',
    ]);
  });

  it('a directory copy busts an install in a directory below it, a warning in a builder stage', () => {
    assert.deepEqual(said2(`WORKDIR /app\nCOPY web web\nRUN cd web/sub && ${install}\nFROM scratch\n`), [
      'source-before-dependencies@3:warning: COPY of web (line 3) comes before "npm ci" (line 4), which runs in /app/web/sub: every change there re-runs the install and changes the dependency layer every node pulls',
    ]);
  });

  it('after a whole-context copy, the whole-context copy is the one reported', () => {
    assert.deepEqual(said2(`WORKDIR /app\nCOPY . .\nCOPY web web\nRUN cd web && ${install}\n`), [
      'source-before-dependencies@3:error: COPY of the whole source (line 3) comes before "npm ci" (line 5): every code change re-runs the install and changes the dependency layer every node pulls',
    ]);
  });

  it('an earlier RUN that turns off recommended packages counts', () => {
    const findings = said2(
      'RUN echo \'APT::Install-Recommends "false";\' > /etc/apt/apt.conf.d/99norec\nRUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n',
    );
    assert.deepEqual(
      findings.map((f) => f.split(':')[0]),
      ['consecutive-run@3'],
    );
  });

  it('a copy of the context and more is a whole-context copy; the destination is the last word', () => {
    assert.deepEqual(
      said2(`COPY . extra /app/\nRUN ${install}\n`, [['a', 5]], false).map((f) => f.split(':')[0]),
      ['source-before-dependencies@2', 'missing-dockerignore@2'],
    );
    assert.match(
      said2(`COPY . extra /app/\n`, [['a', 5]], false)[0] ?? '',
      /COPY \. extra sends the whole context \(1 files, 5 B\)/,
    );
    assert.deepEqual(said2(`WORKDIR /app\nCOPY lib web /srv/web/\nRUN cd /srv/web && ${install}\n`), [
      'source-before-dependencies@3:error: COPY of lib (line 3) comes before "npm ci" (line 4), which runs in /srv/web: every change there re-runs the install and changes the dependency layer every node pulls',
    ]);
  });

  it('three secrets or large files are all named; a fourth is counted', () => {
    assert.deepEqual(said2('COPY .env id_rsa .npmrc /x/\n'), [
      'secret-copied@2:error: COPY puts .env, id_rsa, .npmrc into the image',
    ]);
    const big: Array<[string, number]> = [
      ['a', 60e6],
      ['b', 70e6],
      ['c', 80e6],
    ];
    assert.deepEqual(said2('COPY a b c /x/\n', big), [
      'large-file-copied@2:warning: COPY copies c (80.0 MB), b (70.0 MB), a (60.0 MB)',
    ]);
  });

  it('a WORKDIR without argument changes nothing', () => {
    assert.deepEqual(said2(`WORKDIR /app\nWORKDIR\nCOPY web web\nRUN cd /app/web && ${install}\n`).length, 1);
  });

  it('a remote git source with a ref is not local; .env.examples is a secret', () => {
    assert.deepEqual(said2('ADD repo.git#main /src\n'), []);
    assert.deepEqual(said2('COPY .env.examples /x\n'), [
      'secret-copied@2:error: COPY puts .env.examples into the image',
    ]);
  });
});
