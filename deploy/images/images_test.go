package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// staticBinaries compiles a small program with CGO_ENABLED=0 and places it
// in a directory under each service's name: the builder cannot tell it from
// a service binary, and it is built in seconds.
func staticBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles a program")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() { println(\"ok\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/stand\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(bin, "stand"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(bin, "stand"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Services {
		if err := os.WriteFile(filepath.Join(bin, s.Name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func testBuild(t *testing.T, bin string) Build {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Build{BinDir: bin, OutDir: t.TempDir(), Version: "v1.2.3+dirty", Revision: "0123456789abcdef", Repository: "registry.example/secureaudit",
		CACerts: ca, Created: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)}
}

// TestBuildAndReadBack builds the five images, reads each back from its tar
// with go-containerregistry and checks user, entrypoint, ports, labels and
// the absence of any shell; a second build gives the same digests.
func TestBuildAndReadBack(t *testing.T) {
	b := testBuild(t, staticBinaries(t))
	files, err := b.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(Services) {
		t.Fatalf("%d files, want %d", len(files), len(Services))
	}
	digests := map[string]v1.Hash{}
	for i, s := range Services {
		if want := filepath.Join(b.OutDir, s.Name+"-v1.2.3-dirty.tar"); files[i] != want {
			t.Errorf("wrote %s, want %s", files[i], want)
		}
		cfg, err := Verify(files[i], s, Ref(b.Repository, s.Name, "v1.2.3-dirty"))
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if cfg.Config.User != "65532:65532" || cfg.Config.Entrypoint[0] != "/"+s.Name || cfg.OS != "linux" {
			t.Errorf("%s: config %+v", s.Name, cfg.Config)
		}
		for k, want := range map[string]string{LabelVersion: "v1.2.3+dirty", LabelRevision: "0123456789abcdef", LabelSource: Source} {
			if got := cfg.Config.Labels[k]; got != want {
				t.Errorf("%s: label %s = %q, want %q", s.Name, k, got, want)
			}
		}
		if !strings.Contains(cfg.Config.Labels[LabelCACerts], b.CACerts+" sha256:") {
			t.Errorf("%s: CA certificates not recorded: %q", s.Name, cfg.Config.Labels[LabelCACerts])
		}
		img, err := Read(files[i], t.TempDir(), "v1.2.3-dirty")
		if err != nil {
			t.Fatal(err)
		}
		if digests[s.Name], err = img.Digest(); err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		if len(layers) != 1 {
			t.Errorf("%s: %d layers, want 1 on an empty base", s.Name, len(layers))
		}
	}
	// Reproducible: the same inputs give the same image digests.
	b.OutDir = t.TempDir()
	again, err := b.Run()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range Services {
		img, err := Read(again[i], t.TempDir(), "v1.2.3-dirty")
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := img.Digest(); d != digests[s.Name] {
			t.Errorf("%s: second build digest %s, first %s", s.Name, d, digests[s.Name])
		}
	}
}

// TestRefusesDynamicBinary: a binary that needs the dynamic loader would not
// start on an empty base; the builder says so instead of writing the image.
func TestRefusesDynamicBinary(t *testing.T) {
	dyn := "/bin/true"
	if err := CheckStatic(dyn); err == nil || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("CheckStatic(%s) = %v, want a refusal naming CGO_ENABLED=0", dyn, err)
	}
	bin := t.TempDir()
	data, err := os.ReadFile(dyn)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Services {
		if err := os.WriteFile(filepath.Join(bin, s.Name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testBuild(t, bin).Run(); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("Run with a dynamic binary: %v", err)
	}
}

// TestVerifyCatches: Verify fails an image with a shell added, with a root
// user, or without its entrypoint.
func TestVerifyCatches(t *testing.T) {
	b := testBuild(t, staticBinaries(t))
	s := Services[0]
	ca, _ := os.ReadFile(b.CACerts)
	good, err := b.image(s, "v1.2.3-dirty", ca)
	if err != nil {
		t.Fatal(err)
	}
	shellTar, err := rootfs("bin/sh", []byte("#!"), ca, b.Created)
	if err != nil {
		t.Fatal(err)
	}
	shell, err := tarball.LayerFromReader(strings.NewReader(string(shellTar)))
	if err != nil {
		t.Fatal(err)
	}
	withShell, err := mutate.AppendLayers(good, shell)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := good.ConfigFile()
	root := cfg.DeepCopy()
	root.Config.User = "0"
	asRoot, err := mutate.ConfigFile(good, root)
	if err != nil {
		t.Fatal(err)
	}
	noExe := cfg.DeepCopy()
	noExe.Config.Entrypoint = []string{"/" + s.Name + "-missing"}
	missing, err := mutate.ConfigFile(good, noExe)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		img  v1.Image
		want string
	}{
		"shell":   {withShell, "/bin/sh is in the image"},
		"root":    {asRoot, `user "0"`},
		"missing": {missing, "entrypoint"},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "img.tar")
			ref := Ref(b.Repository, s.Name, "v1.2.3-dirty")
			if err := writeLayoutTar(file, tc.img, ref, b.Created); err != nil {
				t.Fatal(err)
			}
			if _, err := Verify(file, s, ref); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
