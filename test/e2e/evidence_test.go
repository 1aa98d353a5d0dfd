package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cli runs the secureaudit binary.
func cli(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.binDir, "secureaudit"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// TestEvidenceBundle exports the evidence of a scan, verifies it offline with
// the pinned key, and checks that tampered copies do not verify and that the
// error names the entry.
func TestEvidenceBundle(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "evidence.bundle")
	stdout, stderr, code := scan(t, "--snapshot", filepath.Join(env.root, "examples", "cluster"),
		"--directory", filepath.Join(env.root, "examples", "directory.json"), "--out", filepath.Join(dir, "out"), "--evidence-out", bundle)
	if code != 0 {
		t.Fatalf("scan exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	_, key, ok := strings.Cut(stdout, "public key: ")
	if !ok {
		t.Fatalf("scan did not print the public key:\n%s", stdout)
	}
	key = strings.TrimSpace(strings.SplitN(key, "\n", 2)[0])
	stdout, stderr, code = cli(t, "evidence", "verify", bundle, "--public-key", key)
	if code != 0 {
		t.Fatalf("verify exit %d\n%s%s", code, stdout, stderr)
	}
	// The example cluster plants an injection string in an annotation: the
	// risk-agent reports it, and the anomaly is CC7.2 evidence in the bundle.
	for _, c := range []string{"CC4.1", "CC7.2"} {
		if !strings.Contains(stdout, c) {
			t.Errorf("verify output has no %s index:\n%s", c, stdout)
		}
	}

	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	entries := raw["entries"].([]any)
	summary := -1
	for i, e := range entries {
		if strings.Contains(e.(map[string]any)["record"].(string), `"kind":"audit.summary"`) {
			summary = i
		}
	}
	if len(entries) < 2 || summary < 0 {
		t.Fatalf("bundle has %d entries and no audit summary", len(entries))
	}
	injection := false
	for _, e := range entries {
		rec := e.(map[string]any)["record"].(string)
		if strings.Contains(rec, `"control":"anomaly","criteria":["CC7.2"]`) && strings.Contains(rec, "ANOMALY_KIND_INJECTION") {
			injection = true
		}
	}
	if !injection {
		t.Errorf("bundle has no CC7.2 entry for the planted injection")
	}
	tests := []struct {
		name   string
		tamper func(b map[string]any)
		want   string
	}{
		{"edited audit summary", func(b map[string]any) {
			e := b["entries"].([]any)[summary].(map[string]any)
			e["record"] = strings.Replace(e["record"].(string), "SUCCEEDED", "FAILED", 1)
		}, fmt.Sprintf("entry %d does not verify", summary)},
		{"dropped entry", func(b map[string]any) {
			es := b["entries"].([]any)
			b["entries"] = append(es[:1:1], es[2:]...)
		}, "entry 1 does not verify"},
		{"dropped last entry", func(b map[string]any) {
			es := b["entries"].([]any)
			b["entries"] = es[:len(es)-1]
		}, fmt.Sprintf("entry %d does not verify", len(entries)-1)},
		{"forged checkpoint", func(b map[string]any) {
			b["checkpoint"] = strings.Replace(b["checkpoint"].(string), fmt.Sprintf("\n%d\n", len(entries)), fmt.Sprintf("\n%d\n", len(entries)+1), 1)
		}, "checkpoint signature does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b map[string]any
			if err := json.Unmarshal(data, &b); err != nil {
				t.Fatal(err)
			}
			tc.tamper(b)
			out, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "tampered.bundle")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := cli(t, "evidence", "verify", path, "--public-key", key)
			if code == 0 {
				t.Fatalf("a tampered bundle verified:\n%s", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, stderr)
			}
		})
	}
}
