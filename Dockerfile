# syntax=docker/dockerfile:1
# Hoist's image: one binary, `hoist`, for the mirror, the node agent and the controller.
#
#   docker build -t ghcr.io/hoist-dev/hoist:0.1.0 .
#
# The runtime is distroless: Node.js and CA certificates, no shell, no package manager, user
# nonroot (65532). The chart runs the agent (and a hostPath mirror) as uid 0 itself, because
# containerd's socket and certs.d are root-owned; nothing needs root otherwise.
#
# Base images are pinned by digest so every build, and every node's cache, shares their layers.
# Bump tag and digest together (`skopeo inspect docker://IMAGE:TAG` prints the digest). These two
# index digests could not be fetched from here; they are the ones public builds of the same tags
# record (a BuildKit log resolving node:20-bookworm-slim to it, among others).
ARG NODE_IMAGE=docker.io/library/node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs20-debian12:nonroot@sha256:2cd820156cf039c8b54ae2d2a97e424b6729070714de8707a6b79f20d56f6a9a

# Production dependencies alone. --ignore-scripts: no dependency needs an install script, and
# `prepare` is our own build, done in the build stage.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts

# The TypeScript build: dependency manifests first, so a source change reuses the npm ci layer.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="hoist" \
      org.opencontainers.image.description="Image-pull accelerator for Kubernetes: pull-through OCI mirror, pre-pulling, node configuration, lazy pulling and analysis" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/hoist-dev/hoist"
WORKDIR /app
# /nodejs/bin on PATH: the chart's exec probes run `node -e ...` (there is no shell).
ENV NODE_ENV=production \
    PATH=/nodejs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Least often changed first: dependencies, then the files beside the code, then the build.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY proto ./proto
COPY --from=build /app/dist ./dist
USER 65532:65532
# Node flags from src/mirror/node-flags.ts (a smaller heap under load; test/node-flags.test.ts checks they match).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "--heap-growing-percent=20", "/app/bin/hoist.js"]
CMD ["--help"]
