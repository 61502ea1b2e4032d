// Package results is vmrunner's result model and its file on disk: one
// Record per kernel × arch × check (record.go), the whole run as a Report
// (report.go), the typed error kinds that say why a record is an error
// (kind.go), the stable reason of every record that is not a pass
// (reason.go), the exit codes folded from records (exitcode.go), the Store
// that owns a run directory and keeps results.json current (store.go), and
// the merge of a sharded run's parts into one run (shard.go, merge.go).
//
// It is what the host controller (package internal/runner) writes and what the
// renderers (package report) read; it imports neither, nor anything that
// boots, downloads or parses a matrix, so that reading a results.json costs
// only the standard library, package protocol and
// internal/atomicfile (the one atomic file writer, also the snapshot cache's).
//
// Promises:
//   - results.json is rewritten atomically (WriteFileAtomic: a temporary file
//     in the same directory, then rename) after every Add and at Finish, so a
//     reader never sees half a file and a crash loses at most the VMs in
//     flight. Run.Finished is false until Finish: a results.json with
//     finished false is an incomplete run.
//   - NewStore moves base/latest atomically through a temporary link of a
//     name no other run picks: runs sharing a base directory can start at
//     the same time.
//   - A run records its planned targets (RunInfo.Targets) from the start, so
//     that Report.Missing and Report.NotRun name the VMs an unfinished run
//     lacks; readers show those as errors of KindIncomplete about the VM
//     (check VMCheck), never as absent.
//   - Every ErrorKind but KindBadInput and KindInterrupted is infrastructure
//     for ExitCode (exit 3), KindCheck included. ExitCode ranks interrupted
//     over bad input over infrastructure over a failed check over a pass,
//     whatever the order of the records.
//   - Merge accepts only shards of one plan (same matrix, lock and plan hash,
//     each shard once, each target's records in one shard) and never drops a
//     target silently: a missing one is an error, or with AllowPartial an
//     error record of kind KindMissing. Each shard must be whole: one record
//     per check of a VM, records that make its run's exit code, a
//     results.json within MaxShardBytes (ReadShard). WriteMerge copies
//     directories and regular files only: a symlink in a shard's directory
//     is refused (*BadShardError); it writes beside OUT and renames at the
//     end, so that a refusal leaves no OUT.
//   - Every record Store.Add writes that is not a pass has a Reason
//     (reason.go, Record.ReasonCode): the guest's, or the one of its error
//     kind, or its check's; readers call ReasonCode so that a results.json
//     written before reasons existed reads the same way.
//   - Kernel, arch, accelerator and source are plain data here: the host's
//     types (kernels.Arch, qemu.Accel) are converted when records are made.
package results
