// Package agentbuild gives a vmrunner installed with `go install` the guest
// binaries it needs beside itself: the guest agent (cmd/vmrunner-agent), the
// workload runner (cmd/vmrunner-workload) and u-root's shell tools, for one
// guest arch.
//
// They are built on first use from the same module version as the running
// vmrunner, with the user's Go toolchain, inside that version's directory in
// the module cache (where `go install` left it, or where `go mod download`
// puts it again): its own go.mod and go.sum pin every dependency, so nothing
// is resolved anew and no checksum database is asked. The result goes to
// <cache>/agents/<version>/<arch>/, written in a temporary directory beside
// it and renamed into place under a flock, so a reader sees all of it or none.
//
// A vmrunner built from a checkout (version "(devel)" or a "+dirty" VCS
// version) builds from that checkout when its source path is still on disk,
// keyed by the executable's own hash; otherwise the error says `make build`.
//
// Errors: ErrNoGo when no go command is on PATH; any other error is a build
// that failed, with go's output.
package agentbuild
