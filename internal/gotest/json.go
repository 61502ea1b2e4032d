package gotest

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSONVerdicts reads the events of `go test -json` for one package and
// returns each test's last verdict: pass, fail, skip, or Unfinished for a
// test that ran and had none. It is what Parse is held to.
func JSONVerdicts(r io.Reader) (map[string]string, error) {
	dec := json.NewDecoder(r)
	out := map[string]string{}
	for {
		var ev struct {
			Action string
			Test   string
		}
		err := dec.Decode(&ev)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read go test -json events: %w", err)
		}
		if ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "run":
			if _, ok := out[ev.Test]; !ok {
				out[ev.Test] = Unfinished
			}
		case Pass, Fail, Skip:
			if out[ev.Test] != Fail { // over -count runs, a failure stays
				out[ev.Test] = ev.Action
			}
		}
	}
}

// Verdicts maps each test of tests to its verdict.
func Verdicts(tests []*Test) map[string]string {
	out := make(map[string]string, len(tests))
	for _, t := range tests {
		out[t.Name] = t.Verdict
	}
	return out
}
