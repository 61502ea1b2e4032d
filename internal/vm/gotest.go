package vm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmrunner/vmrunner/internal/gotest"
	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/results"

	"github.com/vmrunner/vmrunner/internal/text"
)

// GoTestDetails are the details of a record made for one Go test.
type GoTestDetails struct {
	Test      string  `json:"test"` // the full name, as the testing package printed it
	Runs      int     `json:"runs"` // more than 1 with -test.count
	Fails     int     `json:"fails,omitempty"`
	Skips     int     `json:"skips,omitempty"`
	ElapsedS  float64 `json:"elapsed_s"`
	Truncated bool    `json:"output_truncated,omitempty"`
}

// ExpandTests adds, after the record of each test check of format go, one
// record per test and subtest its program ran: test/<program>/<Test>/<sub>,
// with the verdict `go test -json` gives (package internal/gotest), read
// from the output saved on the host. So a VM that died mid-run still tells
// which tests passed before. A test that started and never ended failed
// (its binary crashed or timed out), or is an error with the VM's error
// kind when the VM died under it. A failed test's output is saved next to
// the program's as <Test>.log and listed in its record's artifacts.
func ExpandTests(recs []results.Record, plan protocol.Plan, dir, vmDir string) []results.Record {
	for _, c := range plan.Checks {
		if c.Name != protocol.TestCheck.Name() {
			continue
		}
		p, err := protocol.TestCheck.Decode(c.Params)
		if err != nil || p.Format != protocol.FormatGo {
			continue
		}
		result := "test/" + p.Name
		at := -1
		for i, r := range recs {
			if r.Check == result || (at < 0 && r.Check == c.Name) {
				at = i
			}
		}
		if at < 0 {
			continue
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(result), outputLog))
		if err != nil {
			continue // the program wrote nothing, or never started
		}
		tests, err := gotest.Parse(f)
		f.Close()
		if err != nil || len(tests) == 0 {
			continue
		}
		pkg := recs[at]
		var made []results.Record
		names := map[string]bool{}
		for _, t := range tests {
			r := pkg
			r.Check = goTestRecordName(result, t.Name, names)
			r.ErrorKind, r.Artifacts, r.Message = "", nil, ""
			r.DurationMS = int64(t.Elapsed * 1000)
			d := GoTestDetails{Test: t.Name, Runs: t.Runs, Fails: t.Fails, Skips: t.Skips, ElapsedS: t.Elapsed, Truncated: t.Truncated}
			r.Details, _ = json.Marshal(d)
			switch t.Verdict {
			case gotest.Pass:
				r.Status = protocol.StatusPass
			case gotest.Skip:
				r.Status, r.Message = protocol.StatusSkip, t.Message()
			case gotest.Fail:
				r.Status, r.Message = protocol.StatusFail, t.Message()
			default:
				r.Status = protocol.StatusFail
				why := t.Crash()
				if why == "" {
					why = "the test binary ended (" + pkg.Message + ")"
				}
				if pkg.Status == protocol.StatusError {
					r.Status, r.ErrorKind, why = protocol.StatusError, pkg.ErrorKind, pkg.Message
				}
				r.Message = "did not finish: " + why
			}
			if r.Status == protocol.StatusFail || r.Status == protocol.StatusError {
				log := r.Check + ".log"
				file := filepath.Join(dir, filepath.FromSlash(log))
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					continue
				}
				if err := os.WriteFile(file, t.Output, 0o644); err == nil {
					r.Artifacts = []string{vmDir + "/" + log}
				}
			}
			r.Message = text.Truncate(r.Message, 4096)
			made = append(made, r)
		}
		recs = append(recs[:at+1], append(made, recs[at+1:]...)...)
	}
	return recs
}

var testNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// goTestRecordName names the record of a Go test under result: its name's
// parts made safe as path segments ([A-Za-z0-9._-], at most 64 bytes), the
// parts past the fourth joined with dots (record names have at most six
// segments), and a -2, -3 … suffix where two tests would get one name.
func goTestRecordName(result, test string, used map[string]bool) string {
	parts := strings.Split(test, "/")
	for i, p := range parts {
		p = testNameUnsafe.ReplaceAllString(p, "_")
		if p == "" || p == "." || p == ".." {
			p = "_"
		}
		if len(p) > 64 {
			p = p[:64]
		}
		parts[i] = p
	}
	if len(parts) > 4 {
		parts = append(parts[:3], strings.Join(parts[3:], "."))
	}
	name := result + "/" + strings.Join(parts, "/")
	base := name
	for i := 2; used[name]; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	used[name] = true
	return name
}
