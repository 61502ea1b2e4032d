package workloadcheck

import (
	"github.com/vmrunner/vmrunner/guest"
	"github.com/vmrunner/vmrunner/protocol"
)

// Checks are the checks this package implements (those of
// protocol.RunnerWorkload), by the name used in the plan. Each file that
// implements one adds it.
var Checks = guest.NewRegistry(protocol.RunnerWorkload)
