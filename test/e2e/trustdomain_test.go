package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdopterTrustDomain: with an adopter's trust domain and namespace in
// the environment, `secureaudit scan` issues the certificates for them, the
// five services take them (each refuses a certificate of another identity)
// and the bundled scope manifests resolve against them, and the audit
// succeeds; a service told another trust domain by flag refuses the
// certificates of the default one, naming both.
func TestAdopterTrustDomain(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(filepath.Join(env.binDir, "secureaudit"), "scan", "--snapshot", filepath.Join(env.root, "examples", "cluster"), "--skip-directory", "--format", "json", "--out", out)
	cmd.Env = append(os.Environ(), "SECUREAUDIT_TRUST_DOMAIN=prod.example.com", "SECUREAUDIT_NAMESPACE=security-tools")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scan with trust domain prod.example.com: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Fatal(err)
	}

	// By flag or by environment, a service takes the trust domain: the
	// default domain's certificates are refused (so the scan above ran in
	// prod.example.com).
	for how, set := range map[string]func(*exec.Cmd){
		"flag": func(c *exec.Cmd) { c.Args = append(c.Args, "-trust-domain", "prod.example.com") },
		"env":  func(c *exec.Cmd) { c.Env = append(os.Environ(), "SECUREAUDIT_TRUST_DOMAIN=prod.example.com") },
	} {
		run := exec.Command(filepath.Join(env.binDir, "risk-agent"), "-listen", "127.0.0.1:0", "-cert-dir", env.stack.PKIDir)
		set(run)
		msg, err := run.CombinedOutput()
		if err == nil {
			t.Fatalf("%s: risk-agent started with certificates of another trust domain", how)
		}
		for _, w := range []string{"spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent", "prod.example.com"} {
			if !strings.Contains(string(msg), w) {
				t.Errorf("%s: error %q does not name %s", how, msg, w)
			}
		}
	}
}
