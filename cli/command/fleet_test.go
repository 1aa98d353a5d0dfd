package command

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/cli/client"
	"secureaudit.dev/cli/stack"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestParseLabels(t *testing.T) {
	got, err := parseLabels([]string{"environment=prod", "owner=team=a", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"environment": "prod", "owner": "team=a", "empty": ""}; !cmp.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	for _, bad := range []string{"environment", "=prod"} {
		if _, err := parseLabels([]string{bad}); err == nil || exitCode(err) != ExitUsage {
			t.Errorf("--label %q: err %v, want a usage error", bad, err)
		}
	}
}

func TestLocalClusterName(t *testing.T) {
	for _, tc := range []struct {
		cfg        stack.Config
		want       string
		registered bool
	}{
		{stack.Config{Snapshot: "examples/cluster"}, "cluster", true},
		{stack.Config{Snapshot: "/tmp/prod-east.yaml"}, "prod-east", true},
		{stack.Config{Snapshot: "examples/cluster", ClusterName: "aks-fabrikam-prod"}, "aks-fabrikam-prod", true},
		{stack.Config{Snapshot: "/tmp/AKS_Prod.json"}, "AKS_Prod", false},
		{stack.Config{Kubeconfig: "/k", Context: "kind-dev"}, "kind-dev", true},
		{stack.Config{Kubeconfig: "/k"}, "", false},
	} {
		got := tc.cfg.LocalCluster()
		if got != tc.want || stack.ValidClusterName(got) != tc.registered {
			t.Errorf("%+v: local cluster %q (registrable %v), want %q (%v)", tc.cfg, got, stack.ValidClusterName(got), tc.want, tc.registered)
		}
	}
}

func TestFleetTable(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	ok := &secureauditv1.Audit{Id: "a1", State: secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED, CreatedAt: at, Summary: &secureauditv1.SeverityCounts{Critical: 1, High: 2}}
	failed := &secureauditv1.Audit{Id: "a2", State: secureauditv1.AuditState_AUDIT_STATE_FAILED, CreatedAt: at, Error: "rbac-agent: collect: unavailable"}
	var b bytes.Buffer
	err := fleetTable(&b, &secureauditv1.GetFleetSummaryResponse{
		Totals: &secureauditv1.SeverityCounts{Critical: 1, High: 2},
		Clusters: []*secureauditv1.ClusterSummary{
			{Cluster: &secureauditv1.Cluster{Name: "aks-prod", Labels: map[string]string{"owner": "b", "environment": "prod"}},
				LastAudit: failed, LastSucceeded: ok, HasPrevious: true, NewFindings: 4, ResolvedFindings: 2, FailedAudits: 1, LastFailed: failed,
				WorstFindings:    []*secureauditv1.Finding{{Id: "00000000000000ff", RuleId: "RBAC-001", Title: "cluster-admin bound", Severity: secureauditv1.Severity_SEVERITY_CRITICAL}},
				OverdueSchedules: []*secureauditv1.Schedule{{Name: "nightly", NextRun: at}},
				Trend:            []*secureauditv1.Audit{ok, failed}},
			{Cluster: &secureauditv1.Cluster{Name: "aks-new"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	rows := map[string][]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && rows[f[0]] == nil {
			rows[f[0]] = f // the table's row, not a worst finding's line
		}
	}
	for name, want := range map[string][]string{
		"aks-prod": {"aks-prod", "environment=prod,owner=b", "2026-12-07T09:00:00Z", "FAILED", "1/2/0/0/0", "+4", "-2", "1", "1"},
		"aks-new":  {"aks-new", "-", "never", "-", "-", "-", "-", "0", "0"},
	} {
		if diff := cmp.Diff(want, rows[name]); diff != "" {
			t.Errorf("row of %s (-want +got):\n%s\n%s", name, diff, b.String())
		}
	}
	for _, want := range []string{
		"aks-prod: audit a2 failed: rbac-agent: collect: unavailable",
		"aks-prod: schedule nightly overdue: due 2026-12-07T09:00:00Z",
		"aks-prod  critical  RBAC-001  00000000000000ff  cluster-admin bound",
		"\n  aks-prod  1/2/0/0/0 x\n",
		"2 clusters",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestFleetReportFlags: --format takes md, html or both and refuses
// others; --out without --format, and --format with -o, are
// usage errors, all before the orchestrator is dialled.
func TestFleetReportFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "--format", "json"}, `unknown fleet report format "json"`},
		{[]string{"fleet", "--format", ","}, "no fleet report format given"},
		{[]string{"fleet", "--out", "dir"}, "--out is for the fleet report"},
		{[]string{"fleet", "--format", "md", "-o", "json"}, "give one of them"},
	} {
		var stdout, stderr bytes.Buffer
		root := New(&stdout, &stderr)
		root.SetArgs(append(tt.args, "--state-dir", t.TempDir()))
		err := root.Execute()
		if err == nil || exitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v (exit %d), want a usage error saying %q", tt.args, err, exitCode(err), tt.want)
		}
	}
	got, err := client.ParseFleetFormats("html, md,html")
	if err != nil || len(got) != 2 || got[0].File != "fleet.html" || got[1].File != "fleet.md" {
		t.Errorf("ParseFleetFormats(html, md,html) = %v, %v", got, err)
	}
}
