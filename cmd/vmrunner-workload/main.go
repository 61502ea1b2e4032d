// Command vmrunner-workload runs one "workload" or "beyla" check inside a
// guest, for the agent: the check's name as its argument, its JSON params on
// stdin, a guest.RunnerOutcome as JSON on stdout. SIGTERM cancels the check.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/guest/workloadcheck"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vmrunner-workload CHECK < params.json")
		os.Exit(2)
	}
	check, ok := workloadcheck.Checks.Lookup(os.Args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "vmrunner-workload: unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	params, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmrunner-workload: read params:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	o, err := check(ctx, params)
	if err := json.NewEncoder(os.Stdout).Encode(guest.NewRunnerOutcome(o, err)); err != nil {
		fmt.Fprintln(os.Stderr, "vmrunner-workload: write outcome:", err)
		os.Exit(1)
	}
}
