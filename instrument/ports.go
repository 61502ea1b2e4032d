package instrument

import "github.com/vmrunner/vmrunner/workload"

// Ports are the server ports of the workload's servers.
func Ports(s *workload.Servers) []Port {
	return []Port{
		{Port: workload.Port(s.HTTP), Protocol: HTTP},
		{Port: workload.Port(s.GRPCUnary), Protocol: GRPC, Role: GRPCUnary},
		{Port: workload.Port(s.GRPCStream), Protocol: GRPC, Role: GRPCStream},
		{Port: workload.Port(s.PG), Protocol: PG},
		{Port: workload.Port(s.Redis), Protocol: Redis},
	}
}
