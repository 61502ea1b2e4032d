package vmrunner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"syscall"
	"time"

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
		return fmt.Errorf("%w: a shell boots one VM, the selection has %d", ErrBadMatrix, len(targets))
	}
	t := targets[0]
	if opts.Log == nil {
		opts.Log = discardLogger()
	}
	accel, err := resolveAccel(cmp.Or(opts.Accel, AccelAuto), t.Arch)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadMatrix, err)
	}
	prep, err := NewPreparer(opts.Options)
	if err != nil {
		return err
	}
	prep.Extra = func(agent string, a kernels.Arch) ([]GuestFile, error) {
		files, err := findShellTools(agent, string(a))
		if err != nil {
			return nil, err
		}
		if opts.Object != "" {
			files = append(files, GuestFile{Host: opts.Object, Guest: path.Join(GuestObjectDir, filepath.Base(opts.Object))})
		}
		return files, nil
	}
	pt, err := prep.Prepare(ctx, t, nil)
	if err != nil {
		return err
	}
	bin, err := lookQEMU(t.Arch)
	if err != nil {
		return err
	}
	sockDir, err := os.MkdirTemp("", "vmr")
	if err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	defer os.RemoveAll(sockDir)
	cfg := qemuConfig{
		Arch: t.Arch, Kernel: pt.Kernel, Initramfs: pt.Initramfs, MemoryMiB: pt.MemoryMiB, CPUs: pt.CPUs, Accel: accel, Profile: ProfileFast,
		QMP: filepath.Join(sockDir, "qmp"), Append: opts.Append, Shell: true,
	}
	cmd := exec.Command(bin, cfg.args()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orStdin(opts.Stdin), orWriter(opts.Stdout, os.Stdout), orWriter(opts.Stderr, os.Stderr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	mon, err := dialMonitor(ctx, cfg.QMP, exited)
	if err != nil {
		return err
	}
	defer mon.close()
	if err := mon.run("cont", 5*time.Second); err != nil {
		return err
	}
	select {
	case <-exited:
		if waitErr != nil && exitedEarly(waitErr) {
			return fmt.Errorf("qemu: %w", waitErr)
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
