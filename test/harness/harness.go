// Package harness finds or builds the SecureAudit binaries and locates the
// repository, for the integration and end-to-end tests.
package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// BinDirEnv names a directory of prebuilt binaries (make test sets it).
const BinDirEnv = "SECUREAUDIT_BIN_DIR"

// Services are the five service binaries.
var Services = []string{"rbac-agent", "entra-agent", "risk-agent", "report-agent", "orchestrator"}

// RepoRoot returns the directory holding go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// Binaries returns a directory with the five services and the secureaudit
// command: $SECUREAUDIT_BIN_DIR when set, else a fresh build into scratch.
func Binaries(scratch string) (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		for _, name := range append([]string{"secureaudit"}, Services...) {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return "", fmt.Errorf("%s=%s: %w", BinDirEnv, dir, err)
			}
		}
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(scratch, "bin")
	args := []string{"build", "-buildvcs=auto", "-o", dir + "/"}
	for _, s := range Services {
		args = append(args, "./services/"+s)
	}
	if out, err := runGo(root, args...); err != nil {
		return "", fmt.Errorf("build services: %v\n%s", err, out)
	}
	if out, err := runGo(root, "build", "-buildvcs=auto", "-o", filepath.Join(dir, "secureaudit"), "./cli"); err != nil {
		return "", fmt.Errorf("build cli: %v\n%s", err, out)
	}
	return dir, nil
}

func runGo(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
