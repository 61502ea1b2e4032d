package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEscapeWorkflowCommand(t *testing.T) {
	tests := []struct {
		in, data, property string
	}{
		{"plain", "plain", "plain"},
		{"100% done", "100%25 done", "100%25 done"},
		{"line1\nline2\r\n", "line1%0Aline2%0D%0A", "line1%0Aline2%0D%0A"},
		{"6.1/x86_64 btf: fail, again", "6.1/x86_64 btf: fail, again", "6.1/x86_64 btf%3A fail%2C again"},
		{"%0A literal", "%250A literal", "%250A literal"},
		{"::error::injected", "::error::injected", "%3A%3Aerror%3A%3Ainjected"},
	}
	for _, tt := range tests {
		if got := escapeData(tt.in); got != tt.data {
			t.Errorf("escapeData(%q) = %q, want %q", tt.in, got, tt.data)
		}
		if got := escapeProperty(tt.in); got != tt.property {
			t.Errorf("escapeProperty(%q) = %q, want %q", tt.in, got, tt.property)
		}
	}
}

func TestGitHub(t *testing.T) {
	run := sampleRun(t)
	// A guest message that tries to start a second workflow command.
	run.Results[1].Message = "missing BTF types: vmrunner_no_such_type\n::warning::injected 100%"
	tests := []struct {
		name          string
		env           map[string]string
		wantLines     []string // annotation lines, in order
		wantSummary   []string
		summaryBefore string
	}{
		{name: "not on GitHub", env: map[string]string{"GITHUB_STEP_SUMMARY": "summary.md"}},
		{name: "GITHUB_ACTIONS=false", env: map[string]string{"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": "summary.md"}},
		{
			name: "on GitHub",
			env:  map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "summary.md"},
			wantLines: []string{
				"::error title=vmrunner 5.10/x86_64 btf%3A fail MISSING_BTF::missing BTF types: vmrunner_no_such_type%0A::warning::injected 100%25",
				"::error title=vmrunner 6.1/arm64 btf%3A error (boot-timeout) BOOT_TIMEOUT::boot: no message from the guest agent within 1m0s%0Awarning: WARNING: CPU: 0 PID: 1 at kernel/fork.c:1234 <copy_process>",
				"::error title=vmrunner 6.1/x86_64 verifier/probes/loop%3A fail CHECK_FAILED::load program loop: permission denied: back-edge from insn 7 to 3",
			},
			summaryBefore: "## an earlier step's summary\n",
			wantSummary: []string{
				"## an earlier step's summary\n## vmrunner run 20261126-021029-73f7\n",
				"2 pass, 2 fail, 1 error, 1 skip · accel auto · 1m8.2s",
				"| check | 5.10/x86_64 | 6.1/arm64 | 6.1/x86_64 | 6.12/x86_64 |\n|---|:-:|:-:|:-:|:-:|\n",
				"| btf | ❌ | 💥 | ✅ | ✅ |\n",
				"| verifier/probes/loop | – | ⏭️ | ❌ | – |\n",
				"### Failures",
				"- ❌ **5.10/x86_64** btf: fail `MISSING_BTF`: missing BTF types: vmrunner_no_such_type ::warning::injected 100%\n",
				"- 💥 **6.1/arm64** btf: error (boot-timeout) `BOOT_TIMEOUT`: boot: no message",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			summary := filepath.Join(dir, "summary.md")
			if tt.summaryBefore != "" {
				os.WriteFile(summary, []byte(tt.summaryBefore), 0o644)
			}
			env := func(k string) string {
				if k == "GITHUB_STEP_SUMMARY" && tt.env[k] != "" {
					return summary
				}
				return tt.env[k]
			}
			var out bytes.Buffer
			if err := GitHub(env, &out, run); err != nil {
				t.Fatal(err)
			}
			var lines []string
			if s := strings.TrimSuffix(out.String(), "\n"); s != "" {
				lines = strings.Split(s, "\n")
			}
			if strings.Join(lines, "\n") != strings.Join(tt.wantLines, "\n") {
				t.Errorf("annotations:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.wantLines, "\n"))
			}
			b, err := os.ReadFile(summary)
			if tt.wantSummary == nil {
				if err == nil {
					t.Errorf("summary written outside GitHub Actions:\n%s", b)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.wantSummary {
				if !strings.Contains(string(b), s) {
					t.Errorf("summary lacks %q:\n%s", s, b)
				}
			}
		})
	}
}

func TestMarkdownCellIsInert(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a | b", `a \| b`},
		{"<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"},
		{"two\nlines", "two lines"},
		{"`code`", "'code'"},
	}
	for _, tt := range tests {
		if got := md(tt.in); got != tt.want {
			t.Errorf("md(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
