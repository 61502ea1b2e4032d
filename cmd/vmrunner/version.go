package main

import (
	"runtime/debug"

	"github.com/vmrunner/vmrunner/internal/version"
)

// init names a go-installed vmrunner (`version`, results.json) by its
// module version: only `make build` sets version.Version with -ldflags.
func init() {
	if version.Version != "dev" {
		return
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version.Version = bi.Main.Version
	}
}
