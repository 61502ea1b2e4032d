package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// writeArchive writes the archive for in to w, following the layout in the
// package documentation. The output depends only on in.
func writeArchive(w io.Writer, in *inputs) error {
	bw := bufio.NewWriter(w)
	a := &archiveWriter{w: cpio.Newc.Writer(bw), dirs: map[string]bool{}}

	for _, d := range mountPoints {
		a.dir(d)
	}
	a.add(cpio.CharDev("/dev/console", 0o600, 5, 1))
	agent, err := in.agent.read()
	if err != nil {
		return fmt.Errorf("read agent: %w", err)
	}
	a.add(cpio.StaticRecord(agent, cpio.Info{Name: InitPath, Mode: cpio.S_IFREG | 0o755}))

	var list strings.Builder
	for _, m := range in.modules {
		p := m.archivePath(in.release)
		elf, err := decompressModule(m.raw, m.suffix)
		if err != nil {
			return fmt.Errorf("module %s: %w", m.rel, err)
		}
		a.add(cpio.StaticRecord(elf, cpio.Info{Name: p, Mode: cpio.S_IFREG | 0o644}))
		list.WriteString(p + "\n")
	}
	a.add(cpio.StaticFile(ModuleListPath, list.String(), 0o644))
	for _, m := range in.onDemand {
		elf, err := decompressModule(m.raw, m.suffix)
		if err != nil {
			return fmt.Errorf("module %s: %w", m.rel, err)
		}
		a.add(cpio.StaticRecord(elf, cpio.Info{Name: m.archivePath(in.release), Mode: cpio.S_IFREG | 0o644}))
	}
	if in.index != "" {
		a.add(cpio.StaticFile(ModuleIndexPath, in.index, 0o644))
	}
	if in.config != nil {
		a.add(cpio.StaticRecord(in.config, cpio.Info{Name: ConfigPath(in.release), Mode: cpio.S_IFREG | 0o644}))
	}
	if a.err != nil {
		return a.err
	}
	if err := cpio.WriteTrailer(a.w); err != nil {
		return err
	}
	return bw.Flush()
}

// archiveWriter writes reproducible records, creating parent directories
// first because the kernel's unpacker does not.
type archiveWriter struct {
	w    cpio.RecordWriter
	dirs map[string]bool
	ino  uint64
	err  error
}

func (a *archiveWriter) dir(name string) {
	name = path.Clean("/" + name)
	if name == "/" || a.dirs[name] {
		return
	}
	a.dir(path.Dir(name))
	a.dirs[name] = true
	a.write(cpio.Directory(name, 0o755))
}

func (a *archiveWriter) add(r cpio.Record) {
	a.dir(path.Dir(path.Clean("/" + r.Name)))
	a.write(r)
}

func (a *archiveWriter) write(r cpio.Record) {
	if a.err != nil {
		return
	}
	r = cpio.MakeReproducible(r)
	// Distinct, stable inode numbers; NLink 1 so nothing is taken for a
	// hard link.
	a.ino++
	r.Ino = a.ino
	r.NLink = 1
	if err := a.w.WriteRecord(r); err != nil {
		a.err = fmt.Errorf("write %s: %w", r.Name, err)
	}
}
