package workloadcheck

import "github.com/vmrunner/vmrunner/guest"

// Checks are the checks this package implements, by the name used in the plan.
var Checks = map[string]guest.Check{
	"workload": checkWorkload,
	"beyla":    checkBeyla,
}
