//go:build tools

// The upstream main this module builds; the build tag keeps this file out of every build, while
// `go mod tidy` still records its requirements in go.mod and go.sum.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
