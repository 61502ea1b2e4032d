package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/vmrunner/vmrunner/internal/matrix"
	"github.com/vmrunner/vmrunner/internal/qemu"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/vmrunner/vmrunner/kernels"
)

// ShellOptions say which VM to open a shell in.
type ShellOptions struct {
	Options
	Object string // optional: put this object at /vmrunner/objects/<name>
	// Stdin, Stdout and Stderr are QEMU's; the console is on Stdin and
	// Stdout. Nil means the process's own.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Shell boots the one target of opts.Matrix with the u-root shell tools
// under /bin and the console on stdio; the agent runs /bin/gosh on it and
// powers the VM off when the shell exits. It returns when QEMU has exited;
// ctx ending kills QEMU.
func Shell(ctx context.Context, opts ShellOptions) error {
	targets := opts.Matrix.Targets()
	if len(targets) != 1 {
		return fmt.Errorf("%w: a shell boots one VM, the selection has %d", matrix.ErrBadMatrix, len(targets))
	}
	t := targets[0]
	if opts.Log == nil {
		opts.Log = discardLogger()
	}
	accel, err := qemu.ResolveAccel(cmp.Or(opts.Accel, qemu.AccelAuto), t.Arch)
	if err != nil {
		return fmt.Errorf("%w: %v", matrix.ErrBadMatrix, err)
	}
	prep, err := NewProvisioner(opts.Options)
	if err != nil {
		return err
	}
	prep.Extra = func(agent string, a kernels.Arch) ([]matrix.GuestFile, error) {
		files, err := findShellTools(agent, string(a))
		if err != nil {
			return nil, err
		}
		if opts.Object != "" {
			files = append(files, matrix.GuestFile{Host: opts.Object, Guest: path.Join(matrix.GuestObjectDir, filepath.Base(opts.Object))})
		}
		return files, nil
	}
	pt, err := prep.Provision(ctx, t, nil)
	if err != nil {
		return err
	}
	p, err := qemu.Start(ctx, qemu.Launch{
		Config: qemu.Config{
			Arch: t.Arch, Kernel: pt.Kernel, Initramfs: pt.Initramfs, MemoryMiB: pt.MemoryMiB, CPUs: pt.CPUs, Accel: accel, Profile: qemu.ProfileFast,
			Append: opts.Append, Shell: true,
		},
		Stdin: orStdin(opts.Stdin), Stdout: orWriter(opts.Stdout, os.Stdout), Stderr: orWriter(opts.Stderr, os.Stderr),
		// The shell reads the user's terminal: QEMU stays in its
		// foreground process group.
		Foreground: true,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Resume(); err != nil {
		return err
	}
	select {
	case <-p.Exited():
		if e := p.Exit(); e.Code > 0 || e.Signal != "" {
			return fmt.Errorf("qemu: %s", e.Status)
		}
		return nil
	case <-ctx.Done():
		return errors.New("interrupted")
	}
}

func orStdin(r io.Reader) io.Reader {
	if r == nil {
		return os.Stdin
	}
	return r
}

func orWriter(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}
