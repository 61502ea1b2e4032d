package matrix

import "github.com/vmrunner/vmrunner/protocol"

// The "selftest" check makes a guest fail on purpose (panic, hang, agent
// exit, a flooded or garbled channel) to test vmrunner's failure handling:
//
//	selftest: {action: panic}   # one of protocol.SelftestActions
func init() { registerCheck[protocol.SelftestParams](protocol.SelftestCheck.Def()) }
