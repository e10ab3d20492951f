//go:build tools

// The upstream mains this module builds; the build tag keeps this file out of every build, while
// `go mod tidy` still records their requirements in go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
