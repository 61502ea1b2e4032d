package initramfs

import (
	"path"

	"github.com/vmrunner/vmrunner/protocol"
)

// LayoutVersion names the archive layout described in the package
// documentation. It is part of every cache key.
const LayoutVersion = "vmrunner-initramfs-1"

// Paths inside the archive, as the guest sees them.
const (
	// InitPath is the guest agent.
	InitPath = "/init"
	// ModuleListPath lists the modules to load, one absolute path per line,
	// in load order.
	ModuleListPath = protocol.ModuleListPath
	// ModuleIndexPath lists the modules packed for loading on demand.
	ModuleIndexPath = protocol.ModuleIndexPath
)

// ModulesRoot returns the directory holding the modules of release.
func ModulesRoot(release string) string {
	return path.Join("/lib/modules", release)
}

// ConfigPath returns where the kernel config of release is stored.
func ConfigPath(release string) string {
	return "/boot/config-" + release
}

// mountPoints are the empty directories the agent mounts file systems on.
var mountPoints = []string{"/dev", "/proc", "/sys", "/tmp", "/run"}
