// Command loopload is a cilium/ebpf program as users write them: it loads
// a socket filter that calls bpf_loop (Linux 5.17) and, when the kernel
// refuses it, prints cilium/ebpf's error on stderr and exits 1, as a
// loader would. vmrunner exec reads that error for the failure's reason.
package main

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

func main() {
	// bpf_loop(1, callback, NULL, 0), the callback returning 0. The
	// kernel wants BTF for a program with a callback: both functions
	// carry their prototypes.
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	loop := &btf.Func{Name: "loop", Linkage: btf.GlobalFunc, Type: &btf.FuncProto{Return: i32,
		Params: []btf.FuncParam{{Name: "skb", Type: &btf.Pointer{Target: &btf.Void{}}}}}}
	callback := &btf.Func{Name: "callback", Linkage: btf.StaticFunc, Type: &btf.FuncProto{Return: i32,
		Params: []btf.FuncParam{{Name: "index", Type: u32}, {Name: "ctx", Type: &btf.Pointer{Target: &btf.Void{}}}}}}
	insns := asm.Instructions{
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R1, 1), loop),
		asm.Instruction{OpCode: asm.LoadImmOp(asm.DWord), Src: asm.PseudoFunc, Dst: asm.R2, Constant: -1}.WithReference("callback"),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnLoop.Call(),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		btf.WithFuncMetadata(asm.Mov.Imm(asm.R0, 0).WithSymbol("callback"), callback),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "loop", Type: ebpf.SocketFilter, License: "GPL", Instructions: insns})
	if err != nil {
		fmt.Fprintf(os.Stderr, "loopload: %v\n", err)
		os.Exit(1)
	}
	prog.Close()
	fmt.Println("loopload: bpf_loop program loaded")
}
