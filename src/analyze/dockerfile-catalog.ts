import type { Severity } from './findings.js';

/** Every Dockerfile rule: its default severity and a sentence of help (for SARIF and --help). */
export interface RuleInfo {
  id: string;
  severity: Severity;
  title: string;
  help: string;
}

export const DOCKERFILE_RULES: readonly RuleInfo[] = [
  {
    id: 'source-before-dependencies',
    severity: 'error',
    title: 'Source copied before dependency installation',
    help: 'A COPY of the whole context (or of the directory the install runs in) before the dependency install makes every code change rebuild the dependency layer, and every node re-pull it. Copy only the dependency manifests first, install, then copy the source.',
  },
  {
    id: 'apt-lists-left',
    severity: 'warning',
    title: 'apt package lists left in the layer',
    help: 'apt-get update downloads tens of MB of package lists; remove /var/lib/apt/lists/* in the same RUN or use a cache mount.',
  },
  {
    id: 'pip-cache-left',
    severity: 'warning',
    title: 'pip cache left in the layer',
    help: 'pip keeps downloaded wheels in ~/.cache/pip; use --no-cache-dir, PIP_NO_CACHE_DIR=1, or a cache mount.',
  },
  {
    id: 'uv-cache-left',
    severity: 'warning',
    title: 'uv cache left in the layer',
    help: 'uv keeps downloaded and built wheels in ~/.cache/uv (or $UV_CACHE_DIR); set UV_NO_CACHE=1, pass --no-cache, or use a cache mount on /root/.cache/uv.',
  },
  {
    id: 'conda-cache-left',
    severity: 'warning',
    title: 'conda package cache left in the layer',
    help: 'conda, mamba and micromamba keep every downloaded package and its tarball in <prefix>/pkgs; run "conda clean -afy" in the same RUN or use a cache mount.',
  },
  {
    id: 'apk-cache-left',
    severity: 'warning',
    title: 'apk cache left in the layer',
    help: 'apk add without --no-cache keeps the package index in /var/cache/apk.',
  },
  {
    id: 'npm-cache-left',
    severity: 'warning',
    title: 'npm cache left in the layer',
    help: 'npm keeps every downloaded tarball in ~/.npm; clean it in the same RUN or use a cache mount.',
  },
  {
    id: 'yarn-cache-left',
    severity: 'warning',
    title: 'yarn cache left in the layer',
    help: 'yarn keeps a copy of every package in its cache; run yarn cache clean in the same RUN or use a cache mount.',
  },
  {
    id: 'yum-cache-left',
    severity: 'warning',
    title: 'yum/dnf cache left in the layer',
    help: 'yum and dnf keep metadata and packages in /var/cache; run "clean all" in the same RUN.',
  },
  {
    id: 'no-install-recommends',
    severity: 'warning',
    title: 'apt installs recommended packages',
    help: 'Without --no-install-recommends apt pulls in recommended packages, often doubling the layer.',
  },
  {
    id: 'base-image-latest',
    severity: 'warning',
    title: 'Base image uses latest or no tag',
    help: 'A moving base changes every layer above it without notice, so nodes cannot keep it cached; pin a version tag and a digest.',
  },
  {
    id: 'base-image-unpinned',
    severity: 'info',
    title: 'Base image not pinned by digest',
    help: 'A tag can move; pinning @sha256 keeps the base layers identical, and shared, across builds and images.',
  },
  {
    id: 'base-image-arg',
    severity: 'info',
    title: 'Base image depends on a build argument without a default',
    help: 'The base cannot be checked until the ARG is known; give it a default or pass --build-arg.',
  },
  {
    id: 'base-image-invalid',
    severity: 'error',
    title: 'Base image reference is invalid',
    help: 'The FROM reference does not parse as an image reference.',
  },
  {
    id: 'add-local-file',
    severity: 'warning',
    title: 'ADD of local files',
    help: 'ADD has implicit behaviours (archive extraction, URLs); use COPY for local files and directories.',
  },
  {
    id: 'consecutive-run',
    severity: 'info',
    title: 'Consecutive RUN instructions',
    help: 'Each RUN makes a layer, and files deleted in a later RUN still ship in the earlier one; join related commands with &&.',
  },
  {
    id: 'secret-copied',
    severity: 'error',
    title: 'Secret copied into the image',
    help: 'Keys, tokens and credential files in a layer can be read by anyone who can pull the image; use RUN --mount=type=secret and .dockerignore.',
  },
  {
    id: 'secret-in-arg-env',
    severity: 'warning',
    title: 'Secret passed through ARG or ENV',
    help: 'ARG and ENV values are recorded in the image config and history; use RUN --mount=type=secret.',
  },
  {
    id: 'large-file-copied',
    severity: 'warning',
    title: 'Large file copied into the image',
    help: 'A large file in a frequently rebuilt layer is pulled again by every node on every release; give it its own early layer, exclude it, or fetch it at run time.',
  },
  {
    id: 'missing-dockerignore',
    severity: 'warning',
    title: 'COPY of the whole context without .dockerignore',
    help: 'Without .dockerignore, COPY . sends .git, build output and local secrets into the image and changes the layer on unrelated edits.',
  },
];

export const RULES_BY_ID = new Map(DOCKERFILE_RULES.map((r) => [r.id, r]));
