package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmrunner/vmrunner/internal/text"
)

// BootKind says how the guest got to ready: booted, or restored from a
// snapshot taken when an earlier agent was ready.
type BootKind string

// Boot kinds.
const (
	BootCold     BootKind = "cold"
	BootSnapshot BootKind = "snapshot"
)

// Valid reports whether k is a known boot kind.
func (k BootKind) Valid() bool { return k == BootCold || k == BootSnapshot }

// Bounds of the host's entropy in a plan. 32 bytes are what the kernel's
// CRNG keys itself with; more is allowed, not needed.
const (
	MinEntropy = 32
	MaxEntropy = 512
)

// HostState is what the guest takes from the host before any check runs,
// so that a guest restored from a snapshot tells neither a stale time nor
// another run's random numbers: the agent sets its wall clock to Time and
// mixes Entropy into the kernel's pool, reseeding its CRNG, then answers
// with Prepared.
type HostState struct {
	// TimeUnixNS is the host's wall clock when it sent the plan.
	TimeUnixNS int64 `json:"time_unix_ns"`
	// Entropy is fresh random bytes from the host (MinEntropy to MaxEntropy).
	Entropy []byte `json:"entropy"`
	// Boot says whether the VM was booted or restored.
	Boot BootKind `json:"boot"`
	// SnapshotSavedUnixNS is when the snapshot was taken, for BootSnapshot.
	SnapshotSavedUnixNS int64 `json:"snapshot_saved_unix_ns,omitempty"`
}

// Time is the host's clock as a time.Time.
func (h *HostState) Time() time.Time { return time.Unix(0, h.TimeUnixNS) }

func (h *HostState) validate() error {
	switch {
	case h.TimeUnixNS <= 0:
		return errors.New("host time missing")
	case len(h.Entropy) < MinEntropy || len(h.Entropy) > MaxEntropy:
		return fmt.Errorf("host entropy of %d bytes, want %d to %d", len(h.Entropy), MinEntropy, MaxEntropy)
	case !h.Boot.Valid():
		return fmt.Errorf("invalid boot kind %q", text.Truncate(string(h.Boot), 32))
	case h.Boot == BootSnapshot && (h.SnapshotSavedUnixNS <= 0 || h.SnapshotSavedUnixNS > h.TimeUnixNS):
		return errors.New("snapshot time missing or after the host time")
	case h.Boot == BootCold && h.SnapshotSavedUnixNS != 0:
		return errors.New("snapshot time for a cold boot")
	}
	return nil
}

// Prepared is the guest's answer to a plan, once it has set its clock,
// reseeded its random pool and received the plan's files, and before its
// first check-start: what it found and what it did.
type Prepared struct {
	// Boot repeats the plan's boot kind.
	Boot BootKind `json:"boot"`
	// SnapshotAgeMS is how old the snapshot was when the plan was sent
	// (BootSnapshot only).
	SnapshotAgeMS int64 `json:"snapshot_age_ms,omitempty"`
	// ClockStepMS is how far the agent moved its wall clock to the host's:
	// about the snapshot's age after a restore (the guest's clock stood
	// still while the snapshot was on disk), under a second after a boot
	// (the RTC has whole seconds).
	ClockStepMS int64 `json:"clock_step_ms"`
	// EntropyBytes is how many bytes of host entropy the kernel took,
	// crediting them and reseeding its CRNG.
	EntropyBytes int `json:"entropy_bytes"`
	// Files and FileBytes count the plan's files, received and verified.
	Files     int   `json:"files"`
	FileBytes int64 `json:"file_bytes"`
}

func (p *Prepared) validate() error {
	switch {
	case !p.Boot.Valid():
		return fmt.Errorf("invalid boot kind %q", text.Truncate(string(p.Boot), 32))
	case p.SnapshotAgeMS < 0 || p.Boot == BootCold && p.SnapshotAgeMS != 0:
		return fmt.Errorf("invalid snapshot age %d ms for a %s boot", p.SnapshotAgeMS, p.Boot)
	case p.EntropyBytes < 0 || p.EntropyBytes > MaxEntropy:
		return fmt.Errorf("invalid entropy count %d", p.EntropyBytes)
	case p.Files < 0 || p.Files > MaxFiles || p.FileBytes < 0 || p.FileBytes > MaxFilesSize:
		return fmt.Errorf("invalid file counts %d, %d bytes", p.Files, p.FileBytes)
	}
	return nil
}
