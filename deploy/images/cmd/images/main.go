// Command images builds the five service images from static binaries, with
// no container engine and nothing pulled (`make images`): OCI image layouts
// packed as out/images/<name>-<version>.tar, each verified after writing.
//
// The tag is the binaries' module version as `-version` prints it (a '+'
// becomes '-'), or, for binaries built from a work tree ("(devel)"), `git
// describe --tags --always --dirty`; the revision and the file times come
// from the binaries' VCS stamp, else from git.
package main

import (
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"secureaudit.dev/deploy/images"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	bin := fs.String("bin", "out/images/bin", "directory of the five static (CGO_ENABLED=0) service binaries")
	out := fs.String("out", "out/images", "directory the image tars are written to")
	version := fs.String("version", "", "image version; default: the binaries' module version, else git describe")
	revision := fs.String("revision", "", "VCS revision label; default: the binaries' VCS stamp, else git rev-parse HEAD")
	repo := fs.String("repository", "secureaudit", "image name prefix (<repository>/<service>:<version>)")
	ca := fs.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle of the build machine copied into the images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	info, err := buildinfo.ReadFile(filepath.Join(*bin, images.Services[0].Name))
	if err != nil {
		return fmt.Errorf("read the build information of %s: %w", filepath.Join(*bin, images.Services[0].Name), err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if *version == "" {
		*version = info.Main.Version
		if *version == "" || *version == "(devel)" {
			if *version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
				return fmt.Errorf("no module version in the binaries and %w", err)
			}
		}
	}
	if *revision == "" {
		*revision = settings["vcs.revision"]
		if *revision != "" && settings["vcs.modified"] == "true" {
			*revision += "-modified"
		}
		if *revision == "" {
			if *revision, err = git("rev-parse", "HEAD"); err != nil {
				return err
			}
			if dirty, _ := git("status", "--porcelain", "--untracked-files=no"); dirty != "" {
				*revision += "-modified"
			}
		}
	}
	created, err := created(settings["vcs.time"])
	if err != nil {
		return err
	}
	b := images.Build{BinDir: *bin, OutDir: *out, Version: *version, Revision: *revision, Repository: *repo, CACerts: *ca, Created: created}
	files, err := b.Run()
	if err != nil {
		return err
	}
	tag, _ := images.Tag(*version)
	for i, f := range files {
		fmt.Printf("%s\t%s\n", images.Ref(*repo, images.Services[i].Name, tag), f)
	}
	return nil
}

// created is the time recorded in the images: SOURCE_DATE_EPOCH, else the
// commit time, so that the same commit gives the same image digests.
func created(vcsTime string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if vcsTime == "" {
		var err error
		if vcsTime, err = git("log", "-1", "--format=%cI"); err != nil {
			return time.Time{}, err
		}
	}
	return time.Parse(time.RFC3339, vcsTime)
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
