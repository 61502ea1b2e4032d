package protocol

// What the host and the guest agree on besides the messages: where the host
// puts things in the initramfs and what it says on the kernel command line.
// The guest does not import the host's packages (the agent stays small), so
// both sides read these names from here.
const (
	// ModuleListPath lists the kernel modules the agent loads, one
	// absolute path per line, in load order (written by package initramfs).
	ModuleListPath = "/etc/vmrunner/modules"
	// WorkloadRunnerPath is where the host packs cmd/vmrunner-workload
	// when a plan has a check run by RunnerWorkload.
	WorkloadRunnerPath = "/bin/vmrunner-workload"
	// ShellCmdlineFlag on the kernel command line makes the agent run a
	// shell on the console instead of the plan (vmrunner repro --shell).
	ShellCmdlineFlag = "vmrunner.shell"
)
