package guest

import "runtime/debug"

// Version is the agent's version, set at link time with
// -ldflags "-X github.com/vmrunner/vmrunner/guest.Version=...".
var Version = "dev"

// agentVersion returns Version, qualified by the VCS revision for
// development builds.
func agentVersion() string {
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
