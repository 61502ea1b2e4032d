package protocol

// What the host and the guest agree on besides the messages: where the host
// puts things in the initramfs and what it says on the kernel command line.
// The guest does not import the host's packages (the agent stays small), so
// both sides read these names from here.
const (
	// ModuleListPath lists the kernel modules the agent loads, one
	// absolute path per line, in load order (written by package initramfs).
	ModuleListPath = "/etc/vmrunner/modules"
	// ModuleIndexPath lists the modules packed to be loaded on demand (the
	// verifier check's modules): one line per module asked for, its name
	// then the absolute paths of it and its dependencies in load order
	// (none for a built-in module). A module the kernel does not have has
	// no line.
	ModuleIndexPath = "/etc/vmrunner/modules.ondemand"
	// WorkloadRunnerPath is where the host packs cmd/vmrunner-workload
	// when a plan has a check run by RunnerWorkload.
	WorkloadRunnerPath = "/bin/vmrunner-workload"
	// ShellCmdlineFlag on the kernel command line makes the agent run a
	// shell on the console instead of the plan (vmrunner repro --shell).
	ShellCmdlineFlag = "vmrunner.shell"
	// WarmBTFCmdlineFlag on the kernel command line makes the agent parse
	// the kernel's BTF before it says ready: the host sets it for a VM
	// whose state is saved at ready or restored, so that the snapshot
	// holds the parsed types. A VM that is only booted parses them when a
	// check first needs them, if one does.
	WarmBTFCmdlineFlag = "vmrunner.warm_btf"
)

// External BTF: the kernel's BTF as a separate file, packed by the host
// when a source gives or ships one (kernels.Kernel.BTF).
const (
	// ExternalBTFPath is the raw BTF file.
	ExternalBTFPath = "/etc/vmrunner/btf/vmlinux"
	// ExternalBTFInfoPath is an ExternalBTFInfo, JSON.
	ExternalBTFInfoPath = "/etc/vmrunner/btf/info.json"
)

// ExternalBTFInfo says where the external BTF came from and when to use it.
type ExternalBTFInfo struct {
	// From names the file for messages: a path or URL of the matrix, or
	// the image that shipped it.
	From string `json:"from"`
	// Replaces is set when the matrix gave the file: it is used in place of
	// the kernel's own BTF. Otherwise it is used only when the kernel has
	// none.
	Replaces bool `json:"replaces,omitempty"`
}

// ServersManifestPath is a WorkloadServers, JSON: the real servers the host
// packed for the workload check (package internal/servers), at the paths
// their Debian packages install them.
const ServersManifestPath = "/etc/vmrunner/servers.json"

// WorkloadServers says which real servers the guest has.
type WorkloadServers struct {
	Postgres *ServerPackage `json:"postgres,omitempty"`
	Redis    *ServerPackage `json:"redis,omitempty"`
}

// ServerPackage is a server from a Debian package.
type ServerPackage struct {
	Package string `json:"package"` // postgresql-15
	Version string `json:"version"`
	Suite   string `json:"suite"`
	// Bin is the server's program: /usr/lib/postgresql/15/bin/postgres
	// (initdb beside it), /usr/bin/redis-server.
	Bin string `json:"bin"`
}
