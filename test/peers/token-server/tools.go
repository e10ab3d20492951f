//go:build tools

// The upstream main this module builds: distribution's own Docker token server
// (contrib/token-server, from the same distribution 2.8 line as Debian's docker-registry). The
// build tag keeps this file out of every build, while `go mod tidy` still records its
// requirements in go.mod and go.sum.
package tools

import _ "github.com/docker/distribution/contrib/token-server"
