package main

import (
	"time"

	"github.com/spf13/pflag"
)

// The flags several commands take, each defined once: one name, one help
// text, one default wherever it is accepted. A command registers those it
// takes into its own variables.

// defaultLogLevel is every command's --log-level default: warnings and
// errors only, as a test runner's output should be (exec runs under go
// test -exec); --log-level info shows each step.
const defaultLogLevel = "warn"

func flagAccel(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "accel", "auto", "accelerator: auto (KVM when usable and the arch matches), kvm or tcg")
}

func flagAgentDir(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "agent-dir", "", "directory holding vmrunner-agent-<arch> (default: $VMRUNNER_AGENT_DIR, beside the vmrunner binary, or built on first use after go install)")
}

func flagCacheDir(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "cache-dir", "", "kernel and initramfs cache (default: $VMRUNNER_CACHE or the user cache dir)")
}

func flagLogLevel(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "log-level", defaultLogLevel, "log level: debug, info, warn, error")
}

func flagNoSnapshot(fl *pflag.FlagSet, p *bool) {
	fl.BoolVar(p, "no-snapshot", false, "boot every VM: restore none from a snapshot and save none (as the matrix's defaults.snapshot: false)")
}

func flagRetries(fl *pflag.FlagSet, p *int) {
	fl.IntVar(p, "retries", 1, "boot a VM again this many times after an infrastructure failure (QEMU start, boot timeout); the result says flaky")
}

func flagBootTimeout(fl *pflag.FlagSet, p *time.Duration) {
	fl.DurationVar(p, "boot-timeout", 0, "how long the guest agent has to start (default 2m under TCG, 30s under KVM)")
}
