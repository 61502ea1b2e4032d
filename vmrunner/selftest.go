package vmrunner

import (
	"reflect"

	"github.com/vmrunner/vmrunner/protocol"
)

// The selftest check makes a guest fail on purpose (panic, hang, agent exit,
// a flooded or garbled channel) to test vmrunner's failure handling.
func init() { checkParams["selftest"] = reflect.TypeFor[protocol.SelftestParams]() }
