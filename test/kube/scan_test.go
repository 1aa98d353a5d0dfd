package kube_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanRecordsCredentialCheck runs `secureaudit scan --kubeconfig` with the
// rbac-agent's own ServiceAccount against the shared API server and checks
// that the evidence log holds the rbac-agent's credential self-check, as it
// did when the check ran before serving: one CC6.2 control result, passed,
// with the check's summary and its JSON as data. It needs the built binaries
// (SECUREAUDIT_BIN_DIR, as BenchmarkLiveAudit).
func TestScanRecordsCredentialCheck(t *testing.T) {
	s := server(t)
	binDir := os.Getenv("SECUREAUDIT_BIN_DIR")
	if binDir == "" {
		t.Skip("SECUREAUDIT_BIN_DIR is not set (make build; SECUREAUDIT_BIN_DIR=$PWD/bin)")
	}
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, _ := agentKubeconfig(t, s, admin)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "evidence.bundle")
	out, err := exec.Command(filepath.Join(binDir, "secureaudit"), "scan", "--kubeconfig", kubeconfig, "--format", "json",
		"--out", filepath.Join(dir, "out"), "--evidence-out", bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("scan: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Entries []struct {
			Record string `json:"record"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range raw.Entries {
		if strings.Contains(e.Record, `"control":"credential"`) && strings.Contains(e.Record, `"subject":"rbac-agent"`) {
			found = append(found, e.Record)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d credential entries of the rbac-agent, want 1:\n%s", len(found), strings.Join(found, "\n"))
	}
	t.Logf("credential entry: %s", found[0])
	for _, want := range []string{`"criteria":["CC6.2","CC6.1"]`, `"outcome":"pass"`,
		`rbac-agent: credential no broader than the scope manifest: `, ` probes checked at the API server`, `"data":{"outcome":"pass","summary":"credential no broader`} {
		if !strings.Contains(found[0], want) {
			t.Errorf("credential entry lacks %s:\n%s", want, found[0])
		}
	}
}
