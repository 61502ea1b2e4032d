package main

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestSharedFlags: a flag several commands take has one help text and one
// default wherever it is accepted, and each command that runs VMs takes
// all of them.
func TestSharedFlags(t *testing.T) {
	shared := []string{"accel", "agent-dir", "cache-dir", "log-level", "no-snapshot", "retries", "boot-timeout"}
	type def struct{ usage, value, where string }
	seen := map[string]def{}
	takes := map[string]map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			for _, name := range shared {
				if f.Name != name {
					continue
				}
				if takes[c.CommandPath()] == nil {
					takes[c.CommandPath()] = map[string]bool{}
				}
				takes[c.CommandPath()][name] = true
				d := def{f.Usage, f.DefValue, c.CommandPath()}
				if first, ok := seen[name]; !ok {
					seen[name] = d
				} else if first.usage != d.usage || first.value != d.value {
					t.Errorf("--%s: %q (default %q) in %s, %q (default %q) in %s", name, d.usage, d.value, d.where, first.usage, first.value, first.where)
				}
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	for _, cmd := range []string{"vmrunner run", "vmrunner exec"} {
		for _, name := range shared {
			if !takes[cmd][name] {
				t.Errorf("%s does not take --%s", cmd, name)
			}
		}
	}
	if got := seen["log-level"].value; got != defaultLogLevel {
		t.Errorf("--log-level defaults to %q, want %q", got, defaultLogLevel)
	}
	if len(takes) < 8 {
		t.Errorf("only %d commands take a shared flag: %v", len(takes), takes)
	}
}
