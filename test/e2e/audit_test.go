package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
)

// runExampleAudit runs one audit of the example through the orchestrator's
// API, as the cli workload, and returns the result and its progress output.
func runExampleAudit(t *testing.T, formats string) (*client.Result, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fs, err := client.ParseFormats(formats)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var progress bytes.Buffer
	res, err := c.Run(ctx, client.Options{OutDir: out, Formats: fs, Progress: &progress})
	if err != nil {
		t.Fatalf("audit: %v\nprogress:\n%s", err, progress.String())
	}
	return res, out, progress.String()
}

func readReport(t *testing.T, path string) *secureauditv1.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &secureauditv1.Report{}
	if err := protojson.Unmarshal(data, r); err != nil {
		t.Fatalf("report.json is not the protojson of secureaudit.v1.Report: %v", err)
	}
	return r
}

// findingKey is how the golden file names a finding: rule, subject, binding.
func findingKey(f *secureauditv1.Finding) string {
	s := f.GetSubject()
	subject := "-"
	if s != nil {
		subject = strings.TrimPrefix(s.GetKind().String(), "SUBJECT_KIND_") + ":" + s.GetNamespace() + "/" + s.GetName()
	}
	b := f.GetBinding()
	binding := "-"
	if b != nil {
		binding = strings.TrimPrefix(b.GetKind().String(), "BINDING_KIND_") + ":" + b.GetNamespace() + "/" + b.GetName()
	}
	return f.GetRuleId() + " " + subject + " " + binding
}

func TestAuditExample(t *testing.T) {
	res, out, progress := runExampleAudit(t, "md,json")
	if got := res.Audit.GetState(); got != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		t.Fatalf("state = %s", got)
	}
	if got := res.Audit.GetCluster(); got != exampleCluster {
		t.Errorf("cluster = %q, want %q", got, exampleCluster)
	}
	if !res.Audit.GetDirectoryAvailable() {
		t.Error("directory_available = false, want true: the example has a directory snapshot")
	}
	for _, stage := range []string{"collect", "resolve", "assess", "render", "store", "done"} {
		if !strings.Contains(progress, "["+stage) {
			t.Errorf("progress has no %s event:\n%s", stage, progress)
		}
	}

	report := readReport(t, filepath.Join(out, "report.json"))
	if report.GetAuditId() != res.Audit.GetId() || report.GetCluster() != res.Audit.GetCluster() {
		t.Errorf("report is for audit %s of %s, want %s of %s", report.GetAuditId(), report.GetCluster(), res.Audit.GetId(), res.Audit.GetCluster())
	}
	if len(report.GetFindings()) == 0 {
		t.Fatal("no findings in the example report")
	}
	var keys []string
	ids := map[string]bool{}
	for _, f := range report.GetFindings() {
		if f.GetInfrastructure() {
			t.Errorf("infrastructure finding %s in the main findings", findingKey(f))
		}
		keys = append(keys, findingKey(f))
		ids[f.GetId()] = true
	}
	for _, f := range report.GetInfrastructureFindings() {
		if !f.GetInfrastructure() {
			t.Errorf("finding %s in the appendix is not marked infrastructure", findingKey(f))
		}
		keys = append(keys, "appendix "+findingKey(f))
		ids[f.GetId()] = true
	}
	if len(ids) != len(report.GetFindings())+len(report.GetInfrastructureFindings()) {
		t.Error("finding IDs are not unique")
	}
	sort.Strings(keys)
	checkGolden(t, "example_findings.txt", strings.Join(keys, "\n")+"\n")

	// What the report needs comes from the risk-agent's rule registry, not
	// from a table of the report-agent: every finding has its rule's family
	// and a title for each control it bears on, and the report lists the
	// registry's controls, carried through the orchestrator.
	if diff := cmp.Diff(registry.Controls(), report.GetControls(), protocmp.Transform()); diff != "" {
		t.Errorf("report controls differ from the registry's (-registry +report):\n%s", diff)
	}
	for _, f := range append(report.GetFindings(), report.GetInfrastructureFindings()...) {
		if err := registry.Check(f); err != nil {
			t.Error(err)
		}
	}

	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte(report.GetCluster())) {
		t.Error("report.md does not name the cluster")
	}

	// Same input, same findings: a second audit yields the same IDs.
	again, out2, _ := runExampleAudit(t, "json")
	if again.Audit.GetId() == res.Audit.GetId() {
		t.Fatal("second audit reused the first audit's ID")
	}
	report2 := readReport(t, filepath.Join(out2, "report.json"))
	var ids2 []string
	for _, f := range append(report2.GetFindings(), report2.GetInfrastructureFindings()...) {
		ids2 = append(ids2, f.GetId())
	}
	var ids1 []string
	for _, f := range append(report.GetFindings(), report.GetInfrastructureFindings()...) {
		ids1 = append(ids1, f.GetId())
	}
	if diff := cmp.Diff(ids1, ids2); diff != "" {
		t.Errorf("finding IDs differ between two audits of the same input (-first +second):\n%s", diff)
	}
}

// TestTracePropagated checks that one audit is one trace: the trace ID the
// orchestrator logs for the audit appears in every agent's RPC log.
func TestTracePropagated(t *testing.T) {
	res, _, _ := runExampleAudit(t, "json")
	orch := logOf(t, "orchestrator")
	var traceID string
	for _, line := range orch {
		if !strings.Contains(line, res.Audit.GetId()) || !strings.Contains(line, "audit started") {
			continue
		}
		if m := traceIDPattern.FindStringSubmatch(line); m != nil {
			traceID = m[1]
		}
	}
	if traceID == "" {
		t.Fatalf("orchestrator log has no trace_id for audit %s", res.Audit.GetId())
	}
	for _, agent := range []string{"rbac-agent", "entra-agent", "risk-agent", "report-agent"} {
		found := false
		for _, line := range logOf(t, agent) {
			if strings.Contains(line, `"msg":"rpc"`) && strings.Contains(line, traceID) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s logged no RPC in trace %s", agent, traceID)
		}
	}
}

var traceIDPattern = regexp.MustCompile(`"trace_id":"([0-9a-f]{32})"`)

func logOf(t *testing.T, name string) []string {
	t.Helper()
	for _, svc := range env.stack.Services {
		if svc.Name != name {
			continue
		}
		f, err := os.Open(svc.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var lines []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		return lines
	}
	t.Fatalf("no %s in the stack", name)
	return nil
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}
