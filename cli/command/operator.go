package command

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Environment variables that set the connection to an orchestrator. A flag
// given on the command line wins over the environment, which wins over the
// config file, which wins over the state directory of `secureaudit up`.
const (
	envOrchestrator = "SECUREAUDIT_ORCHESTRATOR"
	envCertDir      = "SECUREAUDIT_CERT_DIR"
	envStateDir     = "SECUREAUDIT_STATE_DIR"
	envConfig       = "SECUREAUDIT_CONFIG"
)

// Config is the command line's config file (YAML), by default
// $XDG_CONFIG_HOME/secureaudit/config.yaml (~/.config/secureaudit/config.yaml),
// or the file SECUREAUDIT_CONFIG names:
//
//	orchestrator: orchestrator.secureaudit.svc:8440
//	certDir: /etc/secureaudit/cli
type Config struct {
	// Orchestrator is the orchestrator's address, host:port.
	Orchestrator string `json:"orchestrator"`
	// CertDir holds cli.crt, cli.key and ca.crt.
	CertDir string `json:"certDir"`
	// StateDir is the state directory of `secureaudit up`.
	StateDir string `json:"stateDir"`
}

// configHelp documents the connection settings for --help.
const configHelp = `Connection to the orchestrator, first found wins:
  --orchestrator, --cert-dir, --state-dir flags
  SECUREAUDIT_ORCHESTRATOR, SECUREAUDIT_CERT_DIR, SECUREAUDIT_STATE_DIR
  config file (SECUREAUDIT_CONFIG, default ~/.config/secureaudit/config.yaml):
      orchestrator: host:8440
      certDir: /path/with/cli.crt-cli.key-ca.crt
  the address and certificates recorded by 'secureaudit up' in .secureaudit/`

// configPath returns the config file's path.
func configPath() string {
	if p := os.Getenv(envConfig); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "secureaudit", "config.yaml")
}

// loadConfig reads the config file; a missing default file is no error.
func loadConfig() (Config, error) {
	var c Config
	path := configPath()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && os.Getenv(envConfig) == "" {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config file: %w", err)
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, fmt.Errorf("config file %s: %w (keys: orchestrator, certDir, stateDir)", path, err)
	}
	return c, nil
}

// applyDefaults fills the connection settings the command line left unset
// from the environment, then the config file.
func (f *auditFlags) applyDefaults() error {
	changed := func(name string) bool { return f.fs != nil && f.fs.Changed(name) }
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	set := func(flag string, target *string, env, fromConfig string) {
		if changed(flag) {
			return
		}
		if v := os.Getenv(env); v != "" {
			*target = v
		} else if fromConfig != "" {
			*target = fromConfig
		}
	}
	set("orchestrator", &f.orchestrator, envOrchestrator, cfg.Orchestrator)
	set("cert-dir", &f.certDir, envCertDir, cfg.CertDir)
	set("state-dir", &f.stateDir, envStateDir, cfg.StateDir)
	return nil
}

// rememberFlags keeps the command's flag set, to tell set flags from defaults.
func (f *auditFlags) rememberFlags(fs *pflag.FlagSet) { f.fs = fs }

// failOnFlag parses --fail-on.
func parseFailOn(s string) (secureauditv1.Severity, error) {
	if s == "" || s == "none" {
		return secureauditv1.Severity_SEVERITY_UNSPECIFIED, nil
	}
	v, ok := secureauditv1.Severity_value["SEVERITY_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usageError(fmt.Errorf("unknown --fail-on severity %q: use critical, high, medium, low, info or none", s))
	}
	return secureauditv1.Severity(v), nil
}

// atOrAbove counts the findings of an audit at or above a severity.
func atOrAbove(s *secureauditv1.SeverityCounts, min secureauditv1.Severity) uint32 {
	counts := []uint32{s.GetCritical(), s.GetHigh(), s.GetMedium(), s.GetLow(), s.GetInfo()}
	var n uint32
	for i, c := range counts {
		if secureauditv1.Severity(i+1) <= min {
			n += c
		}
	}
	return n
}

// checkFailOn returns a findings error when the audit crossed --fail-on.
func checkFailOn(a *secureauditv1.Audit, min secureauditv1.Severity) error {
	if min == secureauditv1.Severity_SEVERITY_UNSPECIFIED {
		return nil
	}
	if n := atOrAbove(a.GetSummary(), min); n > 0 {
		return findingsError(fmt.Errorf("%d %s at or above %s (--fail-on %s); the reports were written", n, plural(int(n), "finding", "findings"), severityName(min), severityName(min)))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// pipelineStages are the stages a progress display counts.
var pipelineStages = []secureauditv1.AuditStage{
	secureauditv1.AuditStage_AUDIT_STAGE_COLLECT,
	secureauditv1.AuditStage_AUDIT_STAGE_RESOLVE,
	secureauditv1.AuditStage_AUDIT_STAGE_ASSESS,
	secureauditv1.AuditStage_AUDIT_STAGE_RENDER,
	secureauditv1.AuditStage_AUDIT_STAGE_STORE,
}

// progress shows an audit's events: on a terminal, one line per finished
// stage with its duration and a redrawn bar for the running one; otherwise
// one plain line per event, for logs and pipelines.
type progress struct {
	w        io.Writer
	terminal bool
	now      func() time.Time
	stage    secureauditv1.AuditStage
	started  time.Time
	last     string
}

func newProgress(w io.Writer, terminal bool) *progress {
	return &progress{w: w, terminal: terminal, now: time.Now}
}

func stageName(s secureauditv1.AuditStage) string {
	if s == secureauditv1.AuditStage_AUDIT_STAGE_UNSPECIFIED {
		return "queued"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "AUDIT_STAGE_"))
}

// Event shows one event.
func (p *progress) Event(e *secureauditv1.AuditEvent) {
	if !p.terminal {
		fmt.Fprintf(p.w, "  [%-8s] %s\n", stageName(e.GetStage()), e.GetMessage())
		return
	}
	if p.started.IsZero() {
		p.started = p.now()
	}
	if e.GetStage() != p.stage {
		p.finishStage()
		p.stage, p.started = e.GetStage(), p.now()
	}
	if p.stage == secureauditv1.AuditStage_AUDIT_STAGE_DONE {
		p.last = ""
		return
	}
	p.last = e.GetMessage()
	done := 0
	for i, s := range pipelineStages {
		if s == p.stage {
			done = i
		}
	}
	bar := strings.Repeat("#", done*4) + strings.Repeat("-", (len(pipelineStages)-done)*4)
	line := fmt.Sprintf("[%s] %d/%d %-8s %s", bar, done, len(pipelineStages), stageName(p.stage), p.last)
	if len(line) > 110 {
		line = line[:107] + "..."
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}

func (p *progress) finishStage() {
	if p.last == "" {
		return
	}
	msg := p.last
	if len(msg) > 80 {
		msg = msg[:77] + "..."
	}
	fmt.Fprintf(p.w, "\r\033[K  ok %-8s %6s  %s\n", stageName(p.stage), p.now().Sub(p.started).Round(10*time.Millisecond), msg)
}

// Close ends the display.
func (p *progress) Close() {
	if p.terminal {
		p.finishStage()
		p.last = ""
		p.stage = secureauditv1.AuditStage_AUDIT_STAGE_UNSPECIFIED
	}
}
