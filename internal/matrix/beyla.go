package matrix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vmrunner/vmrunner/internal/yamlstrict"
	"github.com/vmrunner/vmrunner/kernels"
	"github.com/vmrunner/vmrunner/protocol"
)

func init() { registerCheck[beylaParams](protocol.BeylaCheck.Def()) }

// GuestBeylaDir is where the beyla check's binaries are in the guest.
const GuestBeylaDir = "/vmrunner/beyla"

// beylaParams is the "beyla" check as written in matrix.yaml:
//
//	beyla:
//	  binary: ./bin/beyla-{arch}     # relative to the matrix file; {arch} is x86_64 or arm64
//	  scenario: multi-protocol
//	  duration: 10s                  # the load, as for workload
//	  rates: {http: 300, grpc: 150, sql: 100, redis: 100}
//	  error_rate: 0.1
//	  warmup: 5s                     # after the metrics endpoint answers
//	  settle: 2s                     # after the load, before scraping
//
// With {arch} in binary, one executable per arch is packed (every
// initramfs gets both, the guest runs its own); without it the one binary
// is packed and must match the guest's arch.
type beylaParams struct {
	Binary    string            `yaml:"binary"`
	Scenario  string            `yaml:"scenario"`
	Duration  protocol.Duration `yaml:"duration"`
	Rates     map[string]int    `yaml:"rates"`
	ErrorRate float64           `yaml:"error_rate"`
	Warmup    protocol.Duration `yaml:"warmup"`
	Settle    protocol.Duration `yaml:"settle"`

	guest string
}

// MarshalJSON sends what the guest reads, protocol.BeylaParams, with the
// binary's guest path; the load is validated by protocol.BeylaParams.
func (b beylaParams) MarshalJSON() ([]byte, error) {
	return json.Marshal(protocol.BeylaParams{
		Binary: b.guest, Scenario: b.Scenario, Duration: b.Duration, Rates: b.Rates,
		ErrorRate: b.ErrorRate, Warmup: b.Warmup, Settle: b.Settle,
	})
}

// resolve finds the binaries relative to the matrix file.
func (b *beylaParams) resolve(env *paramsEnv, n *yaml.Node) {
	node := yamlstrict.Value(n, "binary")
	if b.Binary == "" || node == nil {
		env.errorf(n, "missing binary: expected the path of a Beyla or OBI executable, relative to the matrix file ({arch} for one per arch)")
		return
	}
	full := b.Binary
	if !filepath.IsAbs(full) {
		full = filepath.Join(env.dir, full)
	}
	check := func(host string) bool {
		fi, err := os.Stat(host)
		if err != nil || !fi.Mode().IsRegular() {
			env.errorf(node, "binary: %s: no such file (relative to %s)", host, orDot(env.dir))
			return false
		}
		if fi.Mode().Perm()&0o111 == 0 {
			env.errorf(node, "binary: %s is not executable: chmod +x it", host)
			return false
		}
		return true
	}
	if !strings.Contains(full, "{arch}") {
		if check(full) {
			b.guest = GuestBeylaDir + "/bin"
			env.files = append(env.files, GuestFile{Host: full, Guest: b.guest, Exec: true})
		}
		return
	}
	b.guest = GuestBeylaDir
	for _, arch := range []kernels.Arch{kernels.X86_64, kernels.ARM64} {
		host := strings.ReplaceAll(full, "{arch}", string(arch))
		if check(host) {
			env.files = append(env.files, GuestFile{Host: host, Guest: GuestBeylaDir + "/" + string(arch), Exec: true})
		}
	}
}
