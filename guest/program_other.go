//go:build !linux

package guest

import (
	"context"
	"errors"
	"time"

	"github.com/vmrunner/vmrunner/protocol"
)

func runProgram(context.Context, protocol.TestParams, string, func(protocol.Output) error, time.Duration) (programRun, error) {
	return programRun{exitCode: -1}, errors.New("programs run only in a Linux guest")
}
