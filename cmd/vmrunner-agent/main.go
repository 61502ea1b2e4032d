// Command vmrunner-agent is the guest agent: PID 1 of every vmrunner VM.
// Build it static for each guest architecture:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags="-s -w" ./cmd/vmrunner-agent
//
// See package guest.
package main

import "github.com/vmrunner/vmrunner/guest"

func main() { guest.Main() }
