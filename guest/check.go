package guest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/vmrunner/vmrunner/protocol"
)

// Check runs one kind of check with its JSON parameters (possibly empty).
//
// It returns an Outcome with status pass, fail or skip, or an error when
// something unexpected broke; the error is reported as status error, along
// with any Details already set. It should give up when ctx is done.
type Check func(ctx context.Context, params json.RawMessage) (Outcome, error)

// Outcome is what a check found.
type Outcome struct {
	Status  protocol.Status
	Message string
	// Details is encoded to JSON into protocol.Result.Details.
	Details any
	// Sub are results named "<check>/<...>", sent after the check's
	// artifacts. A check that sets Sub and leaves Status empty reports
	// only them.
	Sub []protocol.Result
	// Artifacts are files for the host to save (protocol.Artifact).
	Artifacts []protocol.Artifact
}

// checks is the registry of checks by the name used in the plan.
var checks = map[string]Check{
	"btf":      checkBTF,
	"features": checkFeatures,
	"verifier": checkVerifier,
}

// DecodeParams decodes a check's parameters strictly into v; empty or null
// parameters leave v as it is. Checks outside this package use it too.
func DecodeParams(params json.RawMessage, v any) error { return decodeParams(params, v) }

// decodeParams decodes a check's parameters strictly into v; empty or null
// parameters leave v as it is.
func decodeParams(params json.RawMessage, v any) error {
	if len(params) == 0 || string(params) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	return nil
}
