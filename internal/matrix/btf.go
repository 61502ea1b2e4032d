package matrix

import "github.com/vmrunner/vmrunner/protocol"

// The "btf" check as written in matrix.yaml is its guest parameters:
//
//	btf: {require: [task_struct, sk_buff]}   # default: task_struct, sk_buff, sock
func init() { registerCheck[protocol.BTFParams](protocol.BTFCheck.Def()) }
