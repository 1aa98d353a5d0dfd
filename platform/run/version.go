package run

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// BuildInfo is what a binary knows of its own build.
type BuildInfo struct {
	// Module is the main module's path and Version its version: a release
	// tag when built with go install module@version, "(devel)" from a
	// work tree.
	Module, Version string
	// Revision is the VCS commit the binary was built from, Time its
	// commit time and Modified whether the work tree had uncommitted
	// changes; empty when built without VCS information (-buildvcs=false).
	Revision, Time string
	Modified       bool
	Go             string
}

// ReadBuildInfo returns the running binary's build information.
func ReadBuildInfo() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return BuildInfo{Version: "unknown"}
	}
	out := BuildInfo{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Revision = s.Value
		case "vcs.time":
			out.Time = s.Value
		case "vcs.modified":
			out.Modified = s.Value == "true"
		}
	}
	return out
}

// String is the one line `-version` prints after the program's name.
func (b BuildInfo) String() string {
	parts := []string{b.Module, b.Version}
	if b.Revision != "" {
		rev := "revision " + b.Revision
		if b.Time != "" {
			rev += " " + b.Time
		}
		if b.Modified {
			rev += " (modified)"
		}
		parts = append(parts, rev)
	} else {
		parts = append(parts, "revision unknown")
	}
	if b.Go != "" {
		parts = append(parts, b.Go)
	}
	return strings.Join(parts, " ")
}

// versionRequested reports whether args ask for the version (-version or
// --version, alone or among other flags).
func versionRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		switch a {
		case "-version", "--version", "-version=true", "--version=true":
			return true
		}
	}
	return false
}

// PrintVersion writes "name module version revision ... go" to w.
func PrintVersion(w interface{ Write([]byte) (int, error) }, name string) {
	fmt.Fprintf(w, "%s %s\n", name, ReadBuildInfo())
}
