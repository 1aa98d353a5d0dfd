package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain", errors.New("boom"), ExitError},
		{"usage", usageError(errors.New("bad flag")), ExitUsage},
		{"findings wrapped", errors.Join(errors.New("x"), findingsError(errors.New("2 findings"))), ExitFindings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestExecuteExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"--help"}, ExitOK},
		{"unknown flag", []string{"list", "--bogus"}, ExitUsage},
		{"unknown output", []string{"list", "-o", "xml"}, ExitUsage},
		{"bad fail-on", []string{"audit", "--fail-on", "urgent", "--orchestrator", "127.0.0.1:1", "--cert-dir", "/nonexistent"}, ExitUsage},
		{"missing report", []string{"diff", "/nonexistent/a.json", "/nonexistent/b.json"}, ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := Execute(tt.args, &out, &errOut); got != tt.want {
				t.Errorf("Execute(%v) = %d, want %d; stderr:\n%s", tt.args, got, tt.want, errOut.String())
			}
		})
	}
}

func TestFailOn(t *testing.T) {
	audit := &secureauditv1.Audit{Summary: &secureauditv1.SeverityCounts{High: 2, Low: 1}}
	tests := []struct {
		failOn string
		want   int
	}{
		{"", ExitOK}, {"none", ExitOK}, {"critical", ExitOK}, {"high", ExitFindings},
		{"MEDIUM", ExitFindings}, {"low", ExitFindings}, {"info", ExitFindings},
	}
	for _, tt := range tests {
		t.Run(tt.failOn, func(t *testing.T) {
			min, err := parseFailOn(tt.failOn)
			if err != nil {
				t.Fatal(err)
			}
			if got := exitCode(checkFailOn(audit, min)); got != tt.want {
				t.Errorf("--fail-on %q: exit %d, want %d", tt.failOn, got, tt.want)
			}
		})
	}
	if n := atOrAbove(audit.GetSummary(), secureauditv1.Severity_SEVERITY_LOW); n != 3 {
		t.Errorf("atOrAbove(low) = %d, want 3", n)
	}
}

func TestConnectionPrecedence(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("orchestrator: from-config:8440\ncertDir: /config/certs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		addr     string
		certDir  string
		errMatch string
	}{
		{"config file", nil, map[string]string{envConfig: config}, "from-config:8440", "/config/certs", ""},
		{"env over config", nil, map[string]string{envConfig: config, envOrchestrator: "from-env:8440"}, "from-env:8440", "/config/certs", ""},
		{"flag over env", []string{"--orchestrator", "from-flag:8440", "--cert-dir", "/flag"}, map[string]string{envConfig: config, envOrchestrator: "from-env:8440", envCertDir: "/env"}, "from-flag:8440", "/flag", ""},
		{"nothing", []string{"--state-dir", dir}, map[string]string{envConfig: filepath.Join(dir, "missing.yaml")}, "", "", "read config file"},
		{"bad config key", nil, map[string]string{envConfig: writeFile(t, dir, "bad.yaml", "orchestrater: x\n")}, "", "", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{envConfig, envOrchestrator, envCertDir, envStateDir} {
				t.Setenv(k, tt.env[k])
			}
			var f auditFlags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.registerConnectionTo(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			addr, certDir, err := f.connection()
			if tt.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errMatch) {
					t.Fatalf("connection() error %v, want one containing %q", err, tt.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if addr != tt.addr || certDir != tt.certDir {
				t.Errorf("connection() = %s, %s; want %s, %s", addr, certDir, tt.addr, tt.certDir)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProgress(t *testing.T) {
	events := []*secureauditv1.AuditEvent{
		{Stage: secureauditv1.AuditStage_AUDIT_STAGE_UNSPECIFIED, Message: "audit queued"},
		{Stage: secureauditv1.AuditStage_AUDIT_STAGE_COLLECT, Message: "collecting"},
		{Stage: secureauditv1.AuditStage_AUDIT_STAGE_COLLECT, Message: "collected 3 roles"},
		{Stage: secureauditv1.AuditStage_AUDIT_STAGE_ASSESS, Message: "assessing"},
		{Stage: secureauditv1.AuditStage_AUDIT_STAGE_DONE, Message: "audit complete"},
	}
	t.Run("plain", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, false)
		for _, e := range events {
			p.Event(e)
		}
		p.Close()
		want := "  [queued  ] audit queued\n  [collect ] collecting\n  [collect ] collected 3 roles\n  [assess  ] assessing\n  [done    ] audit complete\n"
		if diff := cmp.Diff(want, b.String()); diff != "" {
			t.Errorf("plain progress (-want +got):\n%s", diff)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, true)
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		p.now = func() time.Time { clock = clock.Add(500 * time.Millisecond); return clock }
		for _, e := range events {
			p.Event(e)
		}
		p.Close()
		got := b.String()
		if strings.Contains(got, "done") || !strings.HasSuffix(got, "\n") {
			t.Errorf("terminal progress shows the done stage or does not end its line:\n%q", got)
		}
		for _, want := range []string{"  ok queued    500ms  audit queued\n", "  ok collect   500ms  collected 3 roles\n", "[########------------] 2/5 assess   assessing", "  ok assess    500ms  assessing\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("terminal progress lacks %q:\n%q", want, got)
			}
		}
	})
}

func report(t *testing.T, dir, name string, findings ...*secureauditv1.Finding) string {
	t.Helper()
	r := &secureauditv1.Report{AuditId: "00000000-0000-4000-8000-00000000000" + name[:1], Cluster: "prod",
		GeneratedAt: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), Findings: findings}
	data, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, string(data))
}

func TestDiffCommand(t *testing.T) {
	f := func(id string, sev secureauditv1.Severity) *secureauditv1.Finding {
		return &secureauditv1.Finding{Id: id, RuleId: "RBAC-001", Title: "t " + id, Severity: sev,
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "alice"},
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}}
	}
	high, crit := secureauditv1.Severity_SEVERITY_HIGH, secureauditv1.Severity_SEVERITY_CRITICAL
	dir := t.TempDir()
	old := report(t, dir, "1-old.json", f("000000000000000a", high), f("000000000000000b", high))
	cur := report(t, dir, "2-new.json", f("000000000000000a", crit), f("000000000000000c", high))

	var out bytes.Buffer
	if code := Execute([]string{"diff", old, cur}, &out, &bytes.Buffer{}); code != ExitOK {
		t.Fatalf("diff exited %d", code)
	}
	for _, want := range []string{
		"1 new, 1 changed, 1 resolved",
		"new                 high            RBAC-001  000000000000000c  user:alice  t 000000000000000c",
		"changed (severity)  high->critical  RBAC-001  000000000000000a",
		"resolved            high            RBAC-001  000000000000000b",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("diff table lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := Execute([]string{"diff", "-o", "json", old, cur}, &out, &bytes.Buffer{}); code != ExitOK {
		t.Fatalf("diff -o json exited %d", code)
	}
	var got struct {
		PreviousAuditID string   `json:"previousAuditId"`
		New             []string `json:"newFindingIds"`
		Changed         []struct {
			FindingID string   `json:"findingId"`
			Fields    []string `json:"fields"`
		} `json:"changed"`
		Resolved []struct {
			ID string `json:"id"`
		} `json:"resolved"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("diff -o json is not JSON: %v\n%s", err, out.String())
	}
	if got.PreviousAuditID != "00000000-0000-4000-8000-000000000001" || len(got.New) != 1 || got.New[0] != "000000000000000c" ||
		len(got.Changed) != 1 || got.Changed[0].FindingID != "000000000000000a" || len(got.Resolved) != 1 || got.Resolved[0].ID != "000000000000000b" {
		t.Errorf("diff -o json = %+v", got)
	}

	out.Reset()
	if code := Execute([]string{"diff", "-o", "yaml", old, cur}, &out, &bytes.Buffer{}); code != ExitOK || !strings.Contains(out.String(), "newFindingIds:\n- 000000000000000c\n") {
		t.Errorf("diff -o yaml exited %d:\n%s", code, out.String())
	}
}

func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	root := New(&bytes.Buffer{}, &bytes.Buffer{})
	for _, name := range []string{"diff", "get", "list", "audit"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Example == "" || cmd.Long == "" {
			t.Errorf("%s has no example or long help", name)
		}
	}
}
