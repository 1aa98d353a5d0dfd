// Package images builds the five service images without a container engine
// and without pulling anything: an empty (scratch) base and one layer holding
// the static service binary, the build machine's CA certificates and an
// /etc/passwd with the non-root user 65532, written as OCI image layouts
// packed in tar files. Verify reads an image back and checks what a cluster
// relies on (non-root user, executable entrypoint, no shell, labels).
package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Service is one image: its binary's name and the ports it serves.
type Service struct {
	Name   string
	Port   int // gRPC over mTLS
	Health int // plaintext gRPC health for the kubelet's probes
}

// Services are the five images, with the ports of deploy/.
var Services = []Service{
	{"orchestrator", 8440, 9440},
	{"rbac-agent", 8441, 9441},
	{"entra-agent", 8442, 9442},
	{"risk-agent", 8443, 9443},
	{"report-agent", 8444, 9444},
}

// User is the non-root user every image runs as.
const (
	UID      = 65532
	UserName = "nonroot"
)

// Labels set on every image (OCI image spec annotations).
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
	// LabelCACerts records where the CA certificates came from and their
	// SHA-256, so an image's trust store can be traced to its build machine.
	LabelCACerts = "dev.secureaudit.ca-certificates"
	// RefName is the layout annotation naming the image's tag.
	RefName = "org.opencontainers.image.ref.name"
)

// CACertsPath is where the CA certificates are in the image (the path Go's
// crypto/x509 reads first on Linux).
const CACertsPath = "etc/ssl/certs/ca-certificates.crt"

// Env is the environment every image sets.
var Env = []string{"SSL_CERT_FILE=/" + CACertsPath}

// Source is the repository recorded in org.opencontainers.image.source.
const Source = "https://github.com/secureaudit/secureaudit"

// Build describes one run of the builder.
type Build struct {
	BinDir     string    // holds the five static binaries
	OutDir     string    // where <name>-<version>.tar are written
	Version    string    // the image tag
	Revision   string    // the VCS revision
	Repository string    // image name prefix, e.g. secureaudit
	CACerts    string    // PEM bundle copied to /etc/ssl/certs/ca-certificates.crt
	Created    time.Time // file and config times (the commit time: reproducible builds)
	Arch       string    // GOARCH of the binaries; runtime.GOARCH when empty
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Tag turns a module version into an image tag: an OCI tag has no '+', so
// "v1.2.3+dirty" becomes "v1.2.3-dirty".
func Tag(version string) (string, error) {
	t := strings.ReplaceAll(version, "+", "-")
	if !tagRE.MatchString(t) || t == "latest" {
		return "", fmt.Errorf("version %q makes no image tag (want letters, digits, '.', '_', '-', and not latest)", version)
	}
	return t, nil
}

// Ref is an image's reference: repository/name:tag.
func Ref(repository, name, tag string) string {
	return repository + "/" + name + ":" + tag
}

// File is where Build.Run writes one image.
func File(outDir, name, tag string) string {
	return filepath.Join(outDir, name+"-"+tag+".tar")
}

// Run builds, writes and verifies every image, returning the files written.
func (b Build) Run() ([]string, error) {
	tag, err := Tag(b.Version)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(b.CACerts)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate in it", b.CACerts)
	}
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range Services {
		img, err := b.image(s, tag, ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		file := File(b.OutDir, s.Name, tag)
		if err := writeLayoutTar(file, img, Ref(b.Repository, s.Name, tag), b.Created); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		if _, err := Verify(file, s, Ref(b.Repository, s.Name, tag)); err != nil {
			return nil, fmt.Errorf("%s: written image fails verification: %w", s.Name, err)
		}
		out = append(out, file)
	}
	return out, nil
}

// CheckStatic refuses a binary that is not a statically linked ELF
// executable: on an empty base there is no dynamic loader or libc.
func CheckStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s: not an ELF executable: %w", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it names a program interpreter): build it with CGO_ENABLED=0", file)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v: build it with CGO_ENABLED=0", file, libs)
	}
	return nil
}

func (b Build) image(s Service, tag string, ca []byte) (v1.Image, error) {
	bin := filepath.Join(b.BinDir, s.Name)
	if err := CheckStatic(bin); err != nil {
		return nil, err
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(ca)
	layerTar, err := rootfs(s.Name, exe, ca, b.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	arch := b.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	labels := map[string]string{
		LabelVersion:  b.Version,
		LabelRevision: b.Revision,
		LabelSource:   Source,
		LabelTitle:    s.Name,
		LabelCreated:  b.Created.UTC().Format(time.RFC3339),
		LabelCACerts:  b.CACerts + " sha256:" + hex.EncodeToString(sum[:]),
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: b.Created.UTC()}
	cfg.Author = "SecureAudit make images"
	cfg.History = []v1.History{{Created: cfg.Created, CreatedBy: "secureaudit make images: /" + s.Name + ", " + CACertsPath + ", etc/passwd"}}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint: []string{"/" + s.Name},
		WorkingDir: "/",
		Env:        Env,
		ExposedPorts: map[string]struct{}{
			strconv.Itoa(s.Port) + "/tcp":   {},
			strconv.Itoa(s.Health) + "/tcp": {},
		},
		Labels: labels,
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.Annotations(img, map[string]string{
		LabelVersion: b.Version, LabelRevision: b.Revision, LabelSource: Source, LabelTitle: s.Name,
	}).(v1.Image), nil
}

// rootfs is the image's one layer: the binary, the CA certificates, the
// user and group files, a home for the user and /tmp. No shell, no other
// program.
func rootfs(name string, exe, ca []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(p string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(p string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", UserName, UID, UID, UserName, UserName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, UID)
	steps := []error{
		file(name, 0o755, exe),
		dir("etc", 0o755, 0),
		file("etc/passwd", 0o644, []byte(passwd)),
		file("etc/group", 0o644, []byte(group)),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		file(CACertsPath, 0o644, ca),
		dir("home", 0o755, 0),
		dir("home/"+UserName, 0o700, UID),
		dir("tmp", 0o1777, 0),
	}
	if err := errors.Join(steps...); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayoutTar writes img as an OCI image layout (index.json naming the
// tag) and packs the layout into file, entries sorted and timed for a
// reproducible tar.
func writeLayoutTar(file string, img v1.Image, ref string, mtime time.Time) error {
	tmp, err := os.MkdirTemp(filepath.Dir(file), ".layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	tag := ref[strings.LastIndexByte(ref, ':')+1:]
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefName: tag, "io.containerd.image.name": ref})); err != nil {
		return err
	}
	var paths []string
	if err := filepath.Walk(tmp, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != tmp {
			paths = append(paths, p)
		}
		return nil
	}); err != nil {
		return err
	}
	sort.Strings(paths)
	out, err := os.CreateTemp(filepath.Dir(file), ".image-")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	tw := tar.NewWriter(out)
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Format: tar.FormatPAX}
		if info.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), out.Chmod(0o644), out.Close()); err != nil {
		return err
	}
	return os.Rename(out.Name(), file)
}

// Read unpacks an image tar written by Run into dir and returns the image
// its index names with tag.
func Read(file, dir, tag string) (v1.Image, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		name := path.Clean(hdr.Name)
		if strings.HasPrefix(name, "..") || path.IsAbs(name) {
			return nil, fmt.Errorf("%s: entry %q outside the layout", file, hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return nil, err
			}
			w, err := os.Create(dst)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(w, tr)
			if err := errors.Join(err, w.Close()); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: unexpected entry %q", file, hdr.Name)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Annotations[RefName] == tag {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("%s: no image tagged %q in the layout", file, tag)
}

// Entry is a file of an image's flattened filesystem.
type Entry struct {
	Mode     int64
	Uid, Gid int
	Size     int64
	Dir      bool
}

// Files flattens an image's layers into its file system.
func Files(img v1.Image) (map[string]Entry, map[string][]byte, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]Entry{}
	small := map[string][]byte{} // contents of etc/
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, small, nil
		}
		if err != nil {
			return nil, nil, err
		}
		name := strings.TrimSuffix(path.Clean(strings.TrimPrefix(hdr.Name, "/")), "/")
		files[name] = Entry{Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, Size: hdr.Size, Dir: hdr.Typeflag == tar.TypeDir}
		if strings.HasPrefix(name, "etc/") && hdr.Typeflag == tar.TypeReg && hdr.Size < 1<<20 && name != CACertsPath {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, nil, err
			}
			small[name] = data
		}
	}
}

// shells are programs whose presence would give an attacker in the
// container an interpreter.
var shells = []string{"bin/sh", "bin/bash", "bin/ash", "bin/dash", "bin/busybox", "usr/bin/sh", "usr/bin/env", "sbin/nologin"}

// Verify reads an image back from its tar and checks it: the tag and labels,
// a numeric non-root user that /etc/passwd names, the entrypoint a regular
// executable file of the layer, the exposed ports, the CA certificates, and
// no file beyond those the builder writes (no shell, no package manager).
// It returns the image's config.
func Verify(file string, s Service, ref string) (*v1.ConfigFile, error) {
	dir, err := os.MkdirTemp("", "secureaudit-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tag := ref[strings.LastIndexByte(ref, ':')+1:]
	img, err := Read(file, dir, tag)
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	if mt != types.OCIManifestSchema1 {
		return nil, fmt.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	c := cfg.Config
	if want := fmt.Sprintf("%d:%d", UID, UID); c.User != want {
		fail("user %q, want %q (numeric, so that runAsNonRoot can check it)", c.User, want)
	}
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/"+s.Name {
		fail("entrypoint %q, want [/%s]", c.Entrypoint, s.Name)
	}
	if len(c.Cmd) != 0 {
		fail("cmd %q: none expected (the manifests give args)", c.Cmd)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if want := []string{strconv.Itoa(s.Port) + "/tcp", strconv.Itoa(s.Health) + "/tcp"}; !slices.Equal(ports, want) {
		fail("exposed ports %v, want %v", ports, want)
	}
	for _, l := range []string{LabelVersion, LabelRevision, LabelSource, LabelCACerts} {
		if c.Labels[l] == "" {
			fail("label %s missing", l)
		}
	}
	if got, _ := Tag(c.Labels[LabelVersion]); got != tag {
		fail("label %s %q does not give the tag %q", LabelVersion, c.Labels[LabelVersion], tag)
	}
	files, etc, err := Files(img)
	if err != nil {
		return nil, err
	}
	exe, ok := files[s.Name]
	switch {
	case !ok:
		fail("entrypoint /%s is not in the image", s.Name)
	case exe.Dir || exe.Mode&0o111 != 0o111 || exe.Size == 0:
		fail("entrypoint /%s is not an executable file (mode %o, size %d)", s.Name, exe.Mode, exe.Size)
	case exe.Mode&0o022 != 0 || exe.Uid != 0:
		fail("entrypoint /%s is writable by its user (mode %o, owner %d)", s.Name, exe.Mode, exe.Uid)
	}
	if !strings.Contains(string(etc["etc/passwd"]), fmt.Sprintf(":x:%d:%d:", UID, UID)) {
		fail("/etc/passwd has no user %d:\n%s", UID, etc["etc/passwd"])
	}
	if e, ok := files[CACertsPath]; !ok || e.Size == 0 {
		fail("no CA certificates at /%s", CACertsPath)
	}
	for _, sh := range shells {
		if _, ok := files[sh]; ok {
			fail("/%s is in the image", sh)
		}
	}
	allowed := map[string]bool{s.Name: true, "etc": true, "etc/passwd": true, "etc/group": true, "etc/ssl": true, "etc/ssl/certs": true,
		CACertsPath: true, "home": true, "home/" + UserName: true, "tmp": true}
	for name := range files {
		if !allowed[name] {
			fail("unexpected file /%s in the image", name)
		}
	}
	return cfg, errors.Join(errs...)
}
