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

// maxOutputBytes bounds what one VM's programs may write to the host's disk
// (times three: the combined log and each stream's).
const maxOutputBytes = protocol.DefaultMaxOutput

// outputSaver writes the output messages of a VM's programs to their files
// as they arrive and passes them on to live, when set. The guest is not
// trusted: the result name must be one a test check may report, and past
// maxOutputBytes nothing more is written.
type outputSaver struct {
	dir   string
	live  func(protocol.Output)
	bytes int64
	files map[string]*outputFiles
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
	if s.bytes+int64(len(o.Data)) > maxOutputBytes {
		return fmt.Errorf("%w (%d MiB)", errOutputLimit, maxOutputBytes>>20)
	}
	s.bytes += int64(len(o.Data))
	f, err := s.open(o.Check)
	if err != nil {
		return err
	}
	stream := f.stdout
	if o.Stream == protocol.Stderr {
		stream = f.stderr
	}
	for _, w := range []*os.File{f.all, stream} {
		if _, err := w.Write(o.Data); err != nil {
			return fmt.Errorf("save output: %w", err)
		}
	}
	if s.live != nil {
		s.live(*o)
	}
	return nil
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
