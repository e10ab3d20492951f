#!/usr/bin/env bash
# Installs the real programs the integration tests run against (see "Real peers for tests" in
# DESIGN.md): Debian's packages, then the peers built from the pinned Go modules under test/peers/.
# Idempotent: does nothing when every peer is already present. Needs root to install packages;
# without root the peer tests skip locally, and CI (CI=true) fails instead of skipping silently.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ci() { [[ "${CI:-}" == "true" ]]; }

# ---------------------------------------------------------------------------------------------
# Debian's packages
# ---------------------------------------------------------------------------------------------

# Binaries the test helpers launch. runc, htpasswd and busybox come from runc, apache2-utils and
# busybox-static; the CNI plugins (containernetworking-plugins) let containerd's CRI report ready.
# `go` here is any Go toolchain for the GOPATH-mode eStargz verifier; the tests prefer Go >= 1.26
# at /usr/local/go/bin (test/helpers/go-peers.ts goBinary), and Debian's golang-go (1.19, also
# pulled in by the -dev packages through golang-any) is only the fallback.
bins=(docker-registry skopeo containerd ctr runc umoci htpasswd wrk hyperfine busybox ip go ctr-remote chromium)
packages=(
  docker-registry skopeo containerd runc umoci apache2-utils wrk hyperfine busybox-static iproute2
  containernetworking-plugins ca-certificates
  golang-go golang-github-containerd-stargz-snapshotter-dev stargz-snapshotter chromium
)

have() {
  # runc and ip live in /usr/sbin or /sbin, which a non-root PATH may lack; Go in /usr/local/go.
  command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" || -x "/usr/local/go/bin/$1" ]]
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

# Returns non-zero when packages are missing and cannot be installed (not root).
install_packages() {
  local missing
  missing="$(missing_bins)"
  if [[ -z "$missing" ]]; then
    echo "install-peers: all Debian peers present (${bins[*]}, CNI plugins)"
    return 0
  fi

  echo "install-peers: missing: $missing"
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "install-peers: not root, cannot install Debian packages: ${packages[*]}" >&2
    echo "install-peers: integration tests that need a missing peer will SKIP." >&2
    echo "install-peers: run 'sudo bash scripts/install-peers.sh' to install them." >&2
    return 1
  fi

  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"

  missing="$(missing_bins)"
  if [[ -n "$missing" ]]; then
    echo "install-peers: still missing after install: $missing" >&2
    exit 1
  fi
  echo "install-peers: all Debian peers installed"
}

# ---------------------------------------------------------------------------------------------
# Peers built from the Go modules under test/peers/
# ---------------------------------------------------------------------------------------------
#
# Each module is built once into "$cache/<name>-<key>/bin", where <key> hashes the module's
# go.mod, go.sum and Go sources, the build recipe below and the Go version: a new pin is a new
# directory, an unchanged one is reused. "$cache/current/<peer>" symlinks are what the tests read
# (test/helpers/go-peers.ts). A build fetches nothing but modules, through GOPROXY as configured.

cache="${HOIST_PEERS_CACHE:-/var/cache/hoist-peers}"
# The modules need Go >= 1.26 (k8s.io/kubernetes 1.37 and containerd 2.4 say so in go.mod).
min_go_minor=26

# Go >= 1.26: $HOIST_GO, else /usr/local/go/bin/go, else `go` on PATH. Debian's /usr/bin/go is
# 1.19 and may come first on a PATH without /usr/local/go/bin (sudo's secure_path, for one).
find_go() {
  local candidate version minor
  for candidate in "${HOIST_GO:-}" /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    version="$(GOTOOLCHAIN=local "$candidate" env GOVERSION 2>/dev/null || true)" # go1.26.8
    [[ "$version" =~ ^go1\.([0-9]+) ]] || continue
    minor="${BASH_REMATCH[1]}"
    if ((minor >= min_go_minor)); then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# The build recipe of each module: packages (one `go build`, so they share compilation), the
# names the tests use for its binaries (peer=binary) and build tags.
recipe() {
  case "$1" in
    kube)
      packages_=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./etcd)
      links_=(kube-apiserver=kube-apiserver kubectl=kubectl etcd=etcd)
      tags_=""
      ;;
    helm)
      packages_=(helm.sh/helm/v3/cmd/helm)
      links_=(helm=helm)
      tags_=""
      ;;
    containerd2)
      packages_=(
        github.com/containerd/containerd/v2/cmd/containerd
        github.com/containerd/containerd/v2/cmd/ctr
        github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
      )
      # The shim sits beside containerd; the test helper puts that directory first on
      # containerd's PATH so that Debian's 1.6 shim is not the one picked.
      links_=(containerd2=containerd ctr2=ctr containerd-shim-runc-v2=containerd-shim-runc-v2)
      # btrfs needs cgo and C headers; devmapper and zfs need devices no test has.
      tags_="no_btrfs no_devmapper no_zfs urfave_cli_no_docs"
      ;;
    conformance)
      # The OCI distribution-spec conformance suite is a Ginkgo *test* package, so it is built
      # with `go test -c` into one test binary (test_binary_), not with `go build`.
      packages_=(github.com/opencontainers/distribution-spec/conformance)
      links_=(oci-conformance=oci-conformance.test)
      tags_=""
      test_binary_=true
      ;;
    token-server)
      # distribution's own Docker token server (contrib/token-server of distribution 2.8.3, the
      # line Debian's docker-registry comes from): the Bearer token realm in front of
      # docker-registry's `auth.token` (test/helpers/token-registry.ts). cesanta/docker_auth is
      # not served by the module proxy here.
      packages_=(github.com/docker/distribution/contrib/token-server)
      links_=(token-server=token-server)
      tags_=""
      ;;
    *)
      echo "install-peers: unknown Go peer module $1" >&2
      return 1
      ;;
  esac
}

# -X flags so the binaries report the versions go.mod pins, as the upstream release builds do.
version_flags() {
  local v
  case "$1" in
    kube)
      v="$(module_version k8s.io/kubernetes)" || return 1 # v1.37.2
      local rest="${v#v}"
      local major="${rest%%.*}" minor
      minor="${rest#*.}"
      minor="${minor%%.*}"
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        echo -n " -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
      done
      ;;
    helm)
      v="$(module_version helm.sh/helm/v3)" || return 1
      echo -n " -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      # .Capabilities.KubeVersion and the lint rules default to Kubernetes 1.N for client-go
      # v0.N, as helm's Makefile sets them.
      local kminor
      kminor="$(module_version k8s.io/client-go)" || return 1
      kminor="${kminor#v0.}"
      kminor="${kminor%%.*}"
      for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        echo -n " -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
      done
      ;;
    containerd2)
      v="$(module_version github.com/containerd/containerd/v2)" || return 1
      echo -n " -X github.com/containerd/containerd/v2/version.Version=$v"
      ;;
  esac
}

go_env() {
  env CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath -buildvcs=false" "$@"
}

module_version() {
  (cd "$module_dir" && go_env "$go" list -m -f '{{.Version}}' "$1")
}

# The cache key: go.mod without its comments, go.sum and every Go source of the module (the
# versions are in go.mod), the recipe, the build flags' code and the Go version. A change to any of
# them is a new directory.
module_key() {
  {
    (cd "$module_dir" && sed -e 's|//.*$||' go.mod && cat go.sum &&
      find . -name '*.go' -type f | LC_ALL=C sort | xargs sha256sum)
    # (The test-binary marker expands to nothing for `go build` modules: their keys are unchanged.)
    echo "packages=${packages_[*]} tags=$tags_ links=${links_[*]} go=$go_version${test_binary_:+ go-test-c}"
    declare -f version_flags go_env
  } | sha256sum | cut -c1-16
}

# Sets module_dir, packages_, links_, tags_ and out (the keyed build directory) for one module.
load_module() {
  module_dir="$repo_root/test/peers/$1"
  packages_=() links_=() tags_="" test_binary_=""
  recipe "$1" || return 1
  local key
  key="$(module_key)" || return 1
  out="$1-$key"
}

# True when the module's keyed build exists and every current/ link points into it.
module_ready() {
  load_module "$1" || return 1
  [[ -d "$cache/$out/bin" ]] || return 1
  local link
  for link in "${links_[@]}"; do
    [[ "$(readlink "$cache/current/${link%%=*}" 2>/dev/null)" == "../$out/bin/${link#*=}" ]] || return 1
  done
}

# Builds one module unless its keyed directory exists, then points the current/ links at it.
build_module() {
  local name="$1"
  load_module "$name" || return 1
  if [[ -d "$cache/$out/bin" ]]; then
    echo "install-peers: $name: cached in $cache/$out"
  else
    local started=$SECONDS xflags
    tmp="$cache/.$out.tmp.$$"
    xflags="$(version_flags "$name")" || {
      echo "install-peers: $name: cannot read the pinned versions from go.mod" >&2
      return 1
    }
    rm -rf "$tmp"
    mkdir -p "$tmp/bin"
    echo "install-peers: $name: building ${packages_[*]} with $go_version (tags: ${tags_:-none})"
    local build=(build -o "$tmp/bin/")
    if [[ -n "$test_binary_" ]]; then
      # One test package; -o names its binary after the (single) link's target.
      local only="${links_[0]}"
      build=(test -c -o "$tmp/bin/${only#*=}")
    fi
    if ! (cd "$module_dir" && go_env "$go" "${build[@]}" -tags "$tags_" -ldflags "-s -w$xflags" \
      "${packages_[@]}"); then
      rm -rf "$tmp"
      echo "install-peers: $name: go build failed" >&2
      return 1
    fi
    # Renamed only once complete: a half-built directory never looks like a cached build.
    mv -T "$tmp" "$cache/$out"
    tmp=""
    echo "install-peers: $name: built in $((SECONDS - started)) s into $cache/$out"
  fi
  mkdir -p "$cache/current"
  local link peer bin
  for link in "${links_[@]}"; do
    peer="${link%%=*}"
    bin="${link#*=}"
    [[ -x "$cache/$out/bin/$bin" ]] || {
      echo "install-peers: $name: $bin missing from $cache/$out/bin" >&2
      return 1
    }
    ln -sfn "../$out/bin/$bin" "$cache/current/.$peer.tmp.$$"
    mv -T "$cache/current/.$peer.tmp.$$" "$cache/current/$peer"
  done
}

go_modules=(kube helm containerd2 conformance token-server)
# The build directory in progress, removed if the script stops before renaming it.
tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Returns 2 when the peers cannot be built here (no Go >= 1.26, cache not writable), 1 when a
# build failed.
build_go_peers() {
  go="$(find_go)" || {
    echo "install-peers: no Go >= 1.$min_go_minor (HOIST_GO, /usr/local/go/bin/go or PATH);" \
      "cannot build the Kubernetes, helm and containerd 2.x peers" >&2
    return 2
  }
  go_version="$(GOTOOLCHAIN=local "$go" env GOVERSION)"
  local name ready=true
  for name in "${go_modules[@]}"; do
    module_ready "$name" || ready=false
  done
  if $ready; then
    echo "install-peers: Go peers present in $cache/current (${go_modules[*]})"
    return 0
  fi

  if ! mkdir -p "$cache" 2>/dev/null || [[ ! -w "$cache" ]]; then
    echo "install-peers: cannot write $cache (set HOIST_PEERS_CACHE to a writable directory)" >&2
    return 2
  fi
  # One builder at a time per cache: two test runs may start together. Holding the lock, any
  # leftover .*.tmp.* directory is from a builder that was killed.
  exec 9>"$cache/.lock"
  flock 9
  rm -rf "$cache"/.*.tmp.*
  local started=$SECONDS
  for name in "${go_modules[@]}"; do
    build_module "$name" || return 1
  done
  exec 9>&-
  echo "install-peers: Go peers ready in $cache/current ($((SECONDS - started)) s)"
}

# ---------------------------------------------------------------------------------------------

status=0
install_packages || status=1
go_status=0
build_go_peers || go_status=$?
if ((go_status == 1)); then
  exit 1
elif ((go_status != 0)); then
  echo "install-peers: tests that need a Go-built peer will SKIP." >&2
  status=1
fi
if ((status != 0)) && ci; then
  echo "install-peers: CI=true, peers are required in CI; failing." >&2
  exit 1
fi
exit 0
