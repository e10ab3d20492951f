//go:build tools

// The upstream mains this module builds; the build tag keeps this file out of every build, while
// `go mod tidy` still records their requirements in go.mod and go.sum.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
