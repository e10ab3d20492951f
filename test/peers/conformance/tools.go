//go:build tools

// The upstream test package this module builds with `go test -c`; the build tag keeps this file
// out of every build, while `go mod tidy` still records its requirements in go.mod and go.sum.
// The suite's _test.go files import gomega and ginkgo's top package, which `go mod tidy` does not
// follow for a dependency's tests: importing them here pins them too.
package tools

import (
	_ "github.com/onsi/ginkgo/v2"
	_ "github.com/onsi/gomega"
	_ "github.com/opencontainers/distribution-spec/conformance"
)
