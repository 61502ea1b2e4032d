// Command uprobe-target is an executable with its symbol table, for the
// verifier check's uprobe attach test: testdata/bpf/loader/uprobe.o attaches
// to its main.main. `make build` builds it unstripped for both arches into
// bin/uprobe-target-{x86_64,arm64}.
package main

import "fmt"

func main() { fmt.Println("uprobe target") }
