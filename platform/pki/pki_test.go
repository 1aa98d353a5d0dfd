package pki

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"secureaudit.dev/platform/identity"
)

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, err := WriteAll(dir, identity.Workloads, time.Now()); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", info.Mode().Perm())
	}
	bundle, err := x509bundle.Load(identity.Domain(), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range identity.Workloads {
		p := Paths(dir, w)
		for _, f := range []string{p.Cert, p.Key} {
			info, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, info.Mode().Perm())
			}
		}
		svid, err := x509svid.Load(p.Cert, p.Key)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		id, _, err := x509svid.Verify(svid.Certificates, bundle)
		if err != nil {
			t.Fatalf("%s: verify: %v", w, err)
		}
		if id != identity.ID(w) {
			t.Errorf("%s: ID %s, want %s", w, id, identity.ID(w))
		}
	}
}
