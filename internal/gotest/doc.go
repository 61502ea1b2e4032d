// Package gotest reads the output of a Go test binary run with
// -test.v=test2json (what `go test -json` runs it with) and gives the
// verdict of each test and subtest, as `go test -json` would give it.
//
// In that mode the testing package starts every framing line with the
// marker byte 0x16: "=== RUN", "=== PAUSE", "=== CONT", "=== NAME" name
// the test that output belongs to, and "--- PASS", "--- FAIL", "--- SKIP"
// (with the elapsed time) end a test. Anything else is the output of the
// test named last. The package is written from that format, not from
// cmd/internal/test2json (which cannot be imported); the tests of package
// vmrunner hold it to `go test -json` test by test.
//
// One difference: a test that started but never ended (the binary crashed,
// or -test.timeout fired) has no verdict in `go test -json`, only its
// package fails; here it is Unfinished, and vmrunner records it as failed.
package gotest
