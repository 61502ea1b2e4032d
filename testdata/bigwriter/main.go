// Command bigwriter writes SIZE bytes to stdout, then how many it wrote to
// stderr, and exits with CODE:
//
//	bigwriter SIZE CODE
//
// The bytes are blocks of 64 KiB of a fixed pseudo-random pattern, each
// stamped with its index, so that a lost, repeated or reordered block
// changes the stream's SHA-256; and cheap to make under emulation, so that
// what is measured is the channel. TestExecLargeOutput runs it in a VM
// under vmrunner exec and compares the SHA-256 of what reached the host's
// stdout with that of the same program run on the host.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: bigwriter SIZE CODE")
		os.Exit(2)
	}
	size, err1 := strconv.ParseInt(os.Args[1], 10, 64)
	code, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || size < 0 {
		fmt.Fprintln(os.Stderr, "bigwriter: bad SIZE or CODE")
		os.Exit(2)
	}
	block := make([]byte, 64<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for i := 0; i < len(block); i += 8 {
		x ^= x << 13 // xorshift64
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(block[i:], x)
	}
	var wrote int64
	for i := uint64(0); wrote < size; i++ {
		binary.LittleEndian.PutUint64(block, i)
		n, err := os.Stdout.Write(block[:min(size-wrote, int64(len(block)))])
		wrote += int64(n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bigwriter: after %d bytes: %v\n", wrote, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "bigwriter: wrote %d bytes\n", wrote)
	os.Exit(code)
}
