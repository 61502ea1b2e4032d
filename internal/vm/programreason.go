package vm

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmrunner/vmrunner/protocol"
	"github.com/vmrunner/vmrunner/reason"
	"github.com/vmrunner/vmrunner/results"
)

// maxReasonRead bounds what ProgramReasons reads of one program's output:
// libbpf prints a verifier log before its error lines, and a log of a
// program at the complexity limit is megabytes long.
const maxReasonRead = 16 << 20

// ProgramReasons gives each failed record of a user's program (test/<name>,
// and test/<name>/<Test> of a Go test binary) the reason its output shows:
// libbpf's or cilium/ebpf's error lines, read by reason.FromOutput from the
// output saved under dir (the program's output.log, a Go test's own .log).
// Such a reason is labelled as read from the program's output (ReasonFrom)
// and carries what to do (Hint); a record whose output shows none keeps
// PROGRAM_FAILED.
func ProgramReasons(recs []results.Record, dir string) []results.Record {
	for i, r := range recs {
		if r.Status != protocol.StatusFail || r.Reason != "" || !strings.HasPrefix(r.Check, protocol.TestCheck.Name()+"/") {
			continue
		}
		out, ok := programOutput(dir, r.Check)
		if !ok {
			continue
		}
		v, ok := reason.FromOutput(out)
		if !ok {
			continue
		}
		recs[i].Reason, recs[i].ReasonDetail, recs[i].ReasonFrom = v.Reason, v.Detail, results.ReasonFromOutput
		if ri, ok := v.Reason.Info(); ok {
			recs[i].Hint = ri.Action
		}
	}
	return recs
}

// programOutput is the output of the program or Go test whose record is
// check: a Go test's own log (ExpandTests) or the program's output.log.
func programOutput(dir, check string) ([]byte, bool) {
	for _, name := range []string{check + ".log", check + "/" + outputLog} {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(f, maxReasonRead))
		f.Close()
		if err == nil {
			return b, true
		}
	}
	return nil, false
}
