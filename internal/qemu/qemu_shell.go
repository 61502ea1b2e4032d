package qemu

import (
	"slices"
	"strings"
)

// shellChardevs swaps the console and control chardevs of args for repro
// --shell: the console on QEMU's stdio, in raw mode, with signal=off so that
// Ctrl-C reaches the guest's shell rather than QEMU; the control port
// unconnected, since no agent speaks on it.
func shellChardevs(args []string, c Config) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] != "-chardev" {
			continue
		}
		switch {
		case hasID(out[i+1], "console"):
			out[i+1] = "stdio,id=console,signal=off"
		case hasID(out[i+1], "control"):
			out[i+1] = "null,id=control"
		}
	}
	return out
}

func hasID(chardev, id string) bool {
	return slices.Contains(strings.Split(chardev, ","), "id="+id)
}
