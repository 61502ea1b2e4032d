// Package atomicfile writes files so that a reader sees the old file or the
// new one, never half of one: the data goes to a temporary file in the
// same directory, which is renamed over the target only once it is
// complete (and, if asked, on disk).
//
// Promises:
//   - The target is replaced by one rename(2) in its own directory; on any
//     error the temporary file is removed and the target is untouched.
//   - The temporary file's name has a random part, so that writers of one
//     target never share a temporary; its form is chosen by the caller
//     (Options.TempSuffix) so that a cache's prune can recognise what a
//     killed writer left: "<base>.<random><suffix>", or the hidden
//     ".<base>.<random>" without a suffix. TempGlob gives the pattern.
//   - The file gets exactly Options.Mode, whatever the umask.
//   - With Options.Sync the file is fsynced before the rename and the
//     directory after it: after WriteFile returns, the new file survives a
//     crash.
package atomicfile
