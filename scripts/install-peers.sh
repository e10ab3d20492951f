#!/usr/bin/env bash
# Installs the real programs the integration tests run against (see "Real peers for tests" in
# DESIGN.md). Idempotent: does nothing when every binary is already present. Needs root to install;
# without root the peer tests skip locally, and CI (CI=true) fails instead of skipping silently.
set -euo pipefail

# Binaries the test helpers launch. runc, htpasswd and busybox come from runc, apache2-utils and
# busybox-static; the CNI plugins (containernetworking-plugins) let containerd's CRI report ready.
bins=(docker-registry skopeo containerd ctr runc umoci htpasswd wrk hyperfine busybox ip go ctr-remote chromium)
packages=(
  docker-registry skopeo containerd runc umoci apache2-utils wrk hyperfine busybox-static iproute2
  containernetworking-plugins ca-certificates
  golang-go golang-github-containerd-stargz-snapshotter-dev stargz-snapshotter chromium
)

have() {
  # runc and ip live in /usr/sbin or /sbin, which a non-root PATH may lack.
  command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

missing_bins() {
  local missing=()
  for bin in "${bins[@]}"; do
    have "$bin" || missing+=("$bin")
  done
  [[ -d /usr/lib/cni && -x /usr/lib/cni/bridge ]] || missing+=("cni-plugins(/usr/lib/cni)")
  # The eStargz reference library, built by the tests' Go verifier in GOPATH mode.
  [[ -d /usr/share/gocode/src/github.com/containerd/stargz-snapshotter/estargz ]] ||
    missing+=("stargz-library(/usr/share/gocode)")
  echo "${missing[*]}"
}

missing="$(missing_bins)"
if [[ -z "$missing" ]]; then
  echo "install-peers: all peers present (${bins[*]}, CNI plugins)"
  exit 0
fi

echo "install-peers: missing: $missing"
if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-peers: not root, cannot install Debian packages: ${packages[*]}" >&2
  echo "install-peers: integration tests that need a missing peer will SKIP." >&2
  echo "install-peers: run 'sudo bash scripts/install-peers.sh' to install them." >&2
  if [[ "${CI:-}" == "true" ]]; then
    echo "install-peers: CI=true, peers are required in CI; failing." >&2
    exit 1
  fi
  exit 0
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"

missing="$(missing_bins)"
if [[ -n "$missing" ]]; then
  echo "install-peers: still missing after install: $missing" >&2
  exit 1
fi
echo "install-peers: all peers installed"
