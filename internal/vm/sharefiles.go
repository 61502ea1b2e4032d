package vm

import (
	"fmt"
	"github.com/vmrunner/vmrunner/initramfs"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

// ShareFiles turns a program's shares (packed files under
// protocol.ShareRoot) into files and directories sent with the plan, so
// that they reach a VM restored from its snapshot as they reach a booted
// one, at the same guest paths, and the agent binds them as it binds a
// per-run archive's. The host names every guest path; the agent checks
// each file's size and SHA-256 before it is used. It fails, and the
// shares go into a per-run archive instead, when they do not fit the
// protocol's bounds: more than protocol.MaxFiles files and directories, a
// file name the protocol does not carry (a control character, a segment
// the guest would refuse), or a plan larger than one message with them.
// sent are the plan's other files, which count towards the bounds.
func ShareFiles(m *matrix.Matrix, a kernels.Arch, shares []initramfs.File, sent []PlanFile) ([]PlanFile, []string, error) {
	if n := len(shares) + len(sent); n > protocol.MaxFiles {
		return nil, nil, fmt.Errorf("%d files and directories, more than the %d a plan carries", n, protocol.MaxFiles)
	}
	var (
		files []PlanFile
		dirs  []string
		total int64
	)
	for _, f := range sent {
		total += f.Spec.Size
	}
	for _, f := range shares {
		if !protocol.ValidGuestFilePath(f.Path) {
			return nil, nil, fmt.Errorf("%s: a name the channel does not carry (%q)", f.Source, f.Path)
		}
		if f.Dir {
			dirs = append(dirs, f.Path)
			continue
		}
		pf, err := OpenPlanFile(f.Source, f.Path, f.Mode&0o111 != 0)
		if err != nil {
			return nil, nil, err
		}
		if total += pf.Spec.Size; total > protocol.MaxFilesSize {
			return nil, nil, fmt.Errorf("files of more than %d MiB in all", protocol.MaxFilesSize>>20)
		}
		files = append(files, pf)
	}
	plan, _ := m.Plan(a)
	// The host state a plan carries, at its largest.
	plan.Host = &protocol.HostState{TimeUnixNS: 1 << 62, Entropy: make([]byte, hostEntropy), Boot: protocol.BootSnapshot, SnapshotSavedUnixNS: 1 << 62}
	for _, f := range append(append([]PlanFile(nil), sent...), files...) {
		plan.Files = append(plan.Files, f.Spec)
	}
	plan.Dirs = dirs
	if _, err := protocol.FramedSize(protocol.Message{Type: protocol.TypePlan, Plan: &plan}); err != nil {
		return nil, nil, fmt.Errorf("the plan with %d files: %w", len(plan.Files), err)
	}
	return files, dirs, nil
}
