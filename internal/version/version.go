// Package version is vmrunner's version, one for the host binary and the
// guest agents: the Makefile sets it at link time
// (-ldflags "-X github.com/vmrunner/vmrunner/internal/version.Version=...").
package version

import "runtime/debug"

// Version is the version the binary was built as; "dev" when built
// without the Makefile.
var Version = "dev"

// Qualified returns Version, qualified by the VCS revision for
// development builds (the agent reports it in its ready message).
func Qualified() string {
	if Version != "dev" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return Version
	}
	return Version + "+" + rev + dirty
}
