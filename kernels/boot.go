package kernels

import (
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Names of the images deriveImages writes next to boot/.
const (
	vmlinuxName = "vmlinux" // x86_64: the ELF inside the bzImage
	imageName   = "Image"   // arm64: the uncompressed Image
)

// deriveImages checks that the shipped kernel dir/vmlinuz is for arch and
// derives the image that boots fastest under emulation. It returns the
// uncompressed image relative to dir, or "" when there is none worth using.
// name says where the files come from in errors.
func deriveImages(dir, vmlinuz, name string, arch Arch, log *slog.Logger) (string, error) {
	src := filepath.Join(dir, vmlinuz)
	info, err := checkArch(src, name+":"+vmlinuz, arch)
	if err != nil {
		return "", err
	}
	start := time.Now()
	switch arch {
	case X86_64:
		if info.Format != FormatBzImage {
			return "", nil
		}
		pvh, err := extractVmlinux(src, filepath.Join(dir, vmlinuxName), name+":"+vmlinuz)
		if err != nil {
			return "", err
		}
		log.Debug("extracted vmlinux", "pvh", pvh, "duration", time.Since(start).Round(time.Millisecond))
		if pvh {
			return vmlinuxName, nil
		}
		return "", nil
	case ARM64:
		switch info.Format {
		case FormatARM64Image:
			return vmlinuz, nil
		case formatGzip:
			if err := gunzipImage(src, filepath.Join(dir, imageName), name+":"+vmlinuz); err != nil {
				return "", err
			}
			log.Debug("extracted Image", "duration", time.Since(start).Round(time.Millisecond))
			return imageName, nil
		case FormatZboot:
			// QEMU 7.2's -kernel does not unwrap EFI zboot: boot the Image.
			if err := unwrapZboot(src, filepath.Join(dir, imageName), name+":"+vmlinuz); err != nil {
				return "", err
			}
			log.Debug("unwrapped EFI zboot Image", "duration", time.Since(start).Round(time.Millisecond))
			return imageName, nil
		}
	}
	return "", nil
}

// extractVmlinux writes the ELF inside the bzImage src (name in errors) to dst and reports
// whether it has a PVH entry point. A payload that is not an x86-64 ELF is
// not kept.
func extractVmlinux(src, dst, name string) (pvh bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, fmt.Errorf("extract vmlinux: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return false, fmt.Errorf("extract vmlinux: %w", err)
	}
	b, err := parseBzImage(in, st.Size())
	if err != nil {
		return false, fmt.Errorf("extract vmlinux from %s: %w", name, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return false, fmt.Errorf("extract vmlinux: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.Remove(dst)
		}
	}()
	if _, err := extractPayload(in, b, out); err != nil {
		out.Close()
		return false, fmt.Errorf("extract vmlinux from %s: %w", name, err)
	}
	if err := out.Close(); err != nil {
		return false, fmt.Errorf("extract vmlinux: %w", err)
	}
	f, err := elf.Open(dst)
	if err != nil {
		return false, nil // not an ELF: boot the bzImage
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return false, fmt.Errorf("extract vmlinux from %s: %w: payload is an ELF for %s", name, ErrWrongArch, f.Machine)
	}
	keep = true
	return hasPVHNote(f), nil
}

// gunzipImage decompresses a gzip'd arm64 Image and checks its magic.
func gunzipImage(src, dst, name string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("gunzip %s: %w", name, err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("gunzip %s: %w", name, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("gunzip %s: %w", name, err)
	}
	_, err = io.Copy(out, zr)
	if err = errors.Join(err, out.Close()); err != nil {
		os.Remove(dst)
		return fmt.Errorf("gunzip %s: %w", name, err)
	}
	info, err := Inspect(dst)
	if err == nil && info.Format != FormatARM64Image {
		err = fmt.Errorf("%w: found %s inside", ErrNotAKernel, info.Format)
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("gunzip %s: %w", name, err)
	}
	return nil
}
