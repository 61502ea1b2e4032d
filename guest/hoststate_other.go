//go:build !linux

package guest

import (
	"errors"
	"time"
)

var errNotLinux = errors.New("only in a Linux guest")

func setWallClock(time.Time) error { return errNotLinux }

func addHostEntropy([]byte) error { return errNotLinux }
