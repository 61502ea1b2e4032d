# vmrunner — see README.md.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/vmrunner/vmrunner/internal/version.Version=$(VERSION)
GOLANGCI  := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
MATRIX    ?= matrix.yaml
RUNFLAGS  ?=

.PHONY: all build cli agents guest-tools uprobe-target beyla-fixture install-deps install-test-deps run test test-unit bench lint generate clean

all: build

## build: bin/vmrunner and the static guest agents beside it
build: cli agents guest-tools uprobe-target

# bin/vmrunner alone; `make cli agents` is all `vmrunner run` needs (the
# reusable action builds that).
cli:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vmrunner ./cmd/vmrunner

agents:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vmrunner-agent-x86_64 ./cmd/vmrunner-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vmrunner-agent-arm64 ./cmd/vmrunner-agent
	# The workload and beyla checks run in their own guest binary (guest/workloadcheck).
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vmrunner-workload-x86_64 ./cmd/vmrunner-workload
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/vmrunner-workload-arm64 ./cmd/vmrunner-workload

# u-root's shell and a few core commands for `vmrunner repro --shell`, static,
# in bin/vmrunner-tools-<arch>/ (runner.ShellTools).
GUEST_TOOLS := gosh ls cat dmesg mount ip
guest-tools:
	for t in $(GUEST_TOOLS); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/vmrunner-tools-x86_64/$$t github.com/u-root/u-root/cmds/core/$$t && \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/vmrunner-tools-arm64/$$t github.com/u-root/u-root/cmds/core/$$t || exit 1; \
	done

# An executable with its symbol table for the verifier's uprobe attach test
# (matrices/verifier-loader.yaml): not stripped on purpose.
uprobe-target:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -o $(BIN)/uprobe-target-x86_64 ./testdata/uprobe-target
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -o $(BIN)/uprobe-target-arm64 ./testdata/uprobe-target

## beyla-fixture: the stand-in for a Beyla binary used by the beyla check's tests
beyla-fixture:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/beyla-fixture-x86_64 ./testdata/beyla-fixture
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/beyla-fixture-arm64 ./testdata/beyla-fixture

## install-deps: QEMU for both arches and the Debian archive keyring, when missing
install-deps:
	@scripts/install-deps.sh

## install-test-deps: what only the tests need (headless chromium, shellcheck)
install-test-deps:
	@scripts/install-test-deps.sh

## run: install what is missing, build, and run the default matrix
run: install-deps build
	$(BIN)/vmrunner run $(MATRIX) $(RUNFLAGS)

## test: unit tests, then the integration tier (real kernels under QEMU), then lint; what CI runs
test: install-deps install-test-deps build
	$(GO) test -count=1 -timeout 60m ./...
	$(MAKE) lint

## test-unit: only the tests that need no QEMU and no network
test-unit:
	VMRUNNER_SKIP_INTEGRATION=1 $(GO) test -count=1 ./...

## bench: boot-time, whole-matrix and memory figures, go test -exec beside a
## btf run, exec restored beside booted, files into a guest in MB/s per
## arch, and the warm paths (one VM's btf run, exec of a hello world, the
## default matrix), beside those of git revision BENCH_BASE when given
## (prints, never asserts)
BENCH_BASE ?=
bench: install-deps build
	$(BIN)/vmrunner bench $(MATRIX)
	VMRUNNER_BENCH_BASE=$(BENCH_BASE) $(GO) test ./cmd/vmrunner -run '^$$' -bench 'ExecVsBTF|ExecRestoredVsBooted|Channel|Warm' -benchtime 3x -timeout 60m

## generate: rebuild the verifier probes in testdata/bpf, the loader test
## objects in testdata/bpf/loader, the workload instrumentation's objects
## in instrument/ and the example's in examples/tracepoint (clang, llvm,
## libbpf-dev)
BPF_SRC    := $(wildcard testdata/bpf/*.c)
# kprobe_args.c is built per arch, named as bpf2go names its objects, and
# once more for x86 as wrong_arch.o, a name that says nothing of its arch.
LOADER_SRC := $(filter-out testdata/bpf/loader/kprobe_args.c,$(wildcard testdata/bpf/loader/*.c))
LOADER_OBJ := $(LOADER_SRC:.c=.o) testdata/bpf/loader/kprobe_args_x86_bpfel.o testdata/bpf/loader/kprobe_args_arm64_bpfel.o \
	testdata/bpf/loader/wrong_arch.o
generate: $(BPF_SRC:.c=.o) $(LOADER_OBJ)
	$(GO) generate ./instrument
	cd examples/tracepoint && $(GO) generate ./...

testdata/bpf/%.o: testdata/bpf/%.c
	clang -O2 -g -target bpf -I/usr/include/$$(uname -m)-linux-gnu -c $< -o $@
	llvm-strip -g $@

testdata/bpf/loader/kprobe_args_%_bpfel.o: testdata/bpf/loader/kprobe_args.c
	clang -O2 -g -target bpfel -D__TARGET_ARCH_$* -I/usr/include/$$(uname -m)-linux-gnu -c $< -o $@
	llvm-strip -g $@

testdata/bpf/loader/wrong_arch.o: testdata/bpf/loader/kprobe_args.c
	clang -O2 -g -target bpfel -D__TARGET_ARCH_x86 -I/usr/include/$$(uname -m)-linux-gnu -c $< -o $@
	llvm-strip -g $@

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(GOLANGCI) run ./...

clean:
	rm -rf $(BIN)
