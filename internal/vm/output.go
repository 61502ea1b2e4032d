package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vmrunner/vmrunner/protocol"

	"github.com/vmrunner/vmrunner/internal/text"
)

// Files a test check's output is saved in, under <vm>/<result>/ (the
// result is test/<name>): both streams in the order they arrived, as a
// terminal shows them, and each stream alone.
const (
	outputLog = "output.log"
	stdoutLog = "stdout.log"
	stderrLog = "stderr.log"
)

// MaxSavedOutput bounds what one VM's programs may write to the host's disk
// (times three: the combined log and each stream's).
const MaxSavedOutput = protocol.DefaultMaxOutput

// outputSaver writes the output messages of a VM's programs to their files
// as they arrive and passes them on to live, when set. The guest is not
// trusted: the result name must be one a test check may report, and past
// MaxSavedOutput nothing more is written. With live (vmrunner exec) the
// output goes on being passed on, whole, and what the files miss is counted
// in cut; without it (the files are the only copy, and the guest bounds
// each program's output to fit) more is a protocol error.
type outputSaver struct {
	dir   string
	max   int64 // MaxSavedOutput
	live  func(protocol.Output)
	bytes int64
	files map[string]*outputFiles
	cut   map[string]int64 // by result: bytes passed on live, not saved
}

type outputFiles struct {
	all, stdout, stderr *os.File
}

var errOutputLimit = errors.New("the guest's programs wrote more output than the limit")

// save writes o; planned says whether its result belongs to the plan.
func (s *outputSaver) save(o *protocol.Output, planned func(string) bool) error {
	if !planned(o.Check) || !protocol.ValidArtifactName(o.Check+"/"+outputLog) {
		return fmt.Errorf("output for %q, which is not a planned result", text.Truncate(o.Check, 64))
	}
	f, err := s.open(o.Check)
	if err != nil {
		return err
	}
	save := o.Data
	if room := s.max - s.bytes; int64(len(save)) > room {
		if s.live == nil {
			return fmt.Errorf("%w (%d MiB)", errOutputLimit, s.max>>20)
		}
		save = save[:room]
		if s.cut == nil {
			s.cut = map[string]int64{}
		}
		s.cut[o.Check] += int64(len(o.Data)) - room
	}
	s.bytes += int64(len(save))
	stream := f.stdout
	if o.Stream == protocol.Stderr {
		stream = f.stderr
	}
	for _, w := range []*os.File{f.all, stream} {
		if _, err := w.Write(save); err != nil {
			return fmt.Errorf("save output: %w", err)
		}
	}
	if s.live != nil {
		s.live(*o)
	}
	return nil
}

// cutNote is what a result's message says when its output files miss
// some of what was passed on, else "".
func (s *outputSaver) cutNote(check string) string {
	n := s.cut[check]
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %s keeps the first %d bytes of the output, %d more were passed on and not saved", outputLog, s.max, n)
}

func (s *outputSaver) open(check string) (*outputFiles, error) {
	if f, ok := s.files[check]; ok {
		return f, nil
	}
	dir := filepath.Join(s.dir, filepath.FromSlash(check))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("save output: %w", err)
	}
	f := &outputFiles{}
	for _, o := range []struct {
		name string
		f    **os.File
	}{{outputLog, &f.all}, {stdoutLog, &f.stdout}, {stderrLog, &f.stderr}} {
		fh, err := os.Create(filepath.Join(dir, o.name))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("save output: %w", err)
		}
		*o.f = fh
	}
	if s.files == nil {
		s.files = map[string]*outputFiles{}
	}
	s.files[check] = f
	return f, nil
}

func (f *outputFiles) close() {
	for _, fh := range []*os.File{f.all, f.stdout, f.stderr} {
		if fh != nil {
			fh.Close()
		}
	}
}

// close closes every file and returns the artifacts saved, by result.
func (s *outputSaver) close() map[string][]string {
	saved := map[string][]string{}
	for check, f := range s.files {
		f.close()
		for _, name := range []string{outputLog, stdoutLog, stderrLog} {
			saved[check] = append(saved[check], check+"/"+name)
		}
	}
	return saved
}
