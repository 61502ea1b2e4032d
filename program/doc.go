// Package program inspects an executable that vmrunner is to run in a
// guest (vmrunner exec, the test check) and lists the host files it needs
// there.
//
// Inspect reads the ELF header with debug/elf and promises:
//
//   - the guest architecture is the ELF machine (EM_X86_64 is x86_64,
//     EM_AARCH64 is arm64); a wanted arch that differs is ErrArchMismatch;
//   - a statically linked program needs nothing but itself;
//   - a dynamically linked program of the host's arch (or of any arch with
//     Options.Sysroot) needs its interpreter (PT_INTERP) and the closure of
//     its DT_NEEDED libraries, found as the dynamic loader would: DT_RPATH
//     (when there is no DT_RUNPATH), DT_RUNPATH, the directories of
//     /etc/ld.so.conf, then the arch's default directories; $ORIGIN is
//     expanded, and a library of another class or machine is passed over.
//     Each is listed at the path the loader asks for, read from the file
//     that path resolves to (symlinks followed);
//   - a dynamically linked program of another arch without a sysroot is
//     ErrForeignDynamic, whose message names the fixes (CGO_ENABLED=0, or
//     --sysroot DIR);
//   - anything that is not an ELF executable is ErrNotELF.
//
// Errors are one line and name the file.
package program
