package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/render"
)

// TestHistoryAcrossAudits audits the example twice: the second audit's
// report, SARIF and GetAuditHistory compare it with the first (or a later
// audit of the same input by another test): nothing new, changed or
// resolved, every SARIF result unchanged.
func TestHistoryAcrossAudits(t *testing.T) {
	runExampleAudit(t, "json")
	res, out, _ := runExampleAudit(t, "json,sarif")
	r := readReport(t, filepath.Join(out, "report.json"))
	h := r.GetHistory()
	if h == nil {
		t.Fatal("the second audit's report has no history")
	}
	if len(h.GetNewFindingIds())+len(h.GetChanged())+len(h.GetResolved()) != 0 {
		t.Errorf("same input, yet history %d new, %d changed, %d resolved", len(h.GetNewFindingIds()), len(h.GetChanged()), len(h.GetResolved()))
	}
	if len(r.GetAccessReview()) == 0 {
		t.Error("the report has no access review subjects")
	}

	data, err := os.ReadFile(filepath.Join(out, "report.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID        string `json:"ruleId"`
				BaselineState string `json:"baselineState"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &sarif); err != nil {
		t.Fatal(err)
	}
	if len(sarif.Runs) != 1 {
		t.Fatalf("SARIF has %d runs, want 1", len(sarif.Runs))
	}
	// One result per finding, besides the choke points' results and the
	// revocations not carried out (the first audit's Revoke actions).
	results := slices.DeleteFunc(sarif.Runs[0].Results, func(res struct {
		RuleID        string `json:"ruleId"`
		BaselineState string `json:"baselineState"`
	}) bool {
		return res.RuleID == render.ChokeRuleID || res.RuleID == render.RevocationRuleID
	})
	if len(results) != len(r.GetFindings()) {
		t.Fatalf("SARIF has %d finding results, want one per finding (%d)", len(results), len(r.GetFindings()))
	}
	for _, res := range results {
		if res.BaselineState != "unchanged" {
			t.Errorf("SARIF baselineState %q, want unchanged", res.BaselineState)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.API().GetAuditHistory(ctx, &secureauditv1.GetAuditHistoryRequest{AuditId: res.Audit.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetHistory().GetPreviousAuditId() != h.GetPreviousAuditId() {
		t.Errorf("GetAuditHistory compares with %s, the report with %s", got.GetHistory().GetPreviousAuditId(), h.GetPreviousAuditId())
	}
}

// TestSchedules registers, lists and removes a schedule through the API.
func TestSchedules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	api := c.API()
	// The first minute of a year: never due while the test runs.
	sc := &secureauditv1.Schedule{Name: "e2e-yearly", Cluster: "example", Cron: "0 0 1 1 *", RetentionDays: 30}
	created, err := api.CreateSchedule(ctx, &secureauditv1.CreateScheduleRequest{Schedule: sc})
	if err != nil {
		t.Fatal(err)
	}
	if next := created.GetSchedule().GetNextRun().AsTime(); next.Month() != time.January || next.Day() != 1 || !next.After(time.Now()) {
		t.Errorf("next run %v, want the next 1 January", next)
	}
	errCases := []struct {
		name string
		sc   *secureauditv1.Schedule
		code codes.Code
	}{
		{"exists", sc, codes.AlreadyExists},
		{"bad cron", &secureauditv1.Schedule{Name: "e2e-bad", Cluster: "example", Cron: "daily at two"}, codes.InvalidArgument},
		{"bad name", &secureauditv1.Schedule{Name: "Bad Name", Cluster: "example", Cron: "@daily"}, codes.InvalidArgument},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.CreateSchedule(ctx, &secureauditv1.CreateScheduleRequest{Schedule: tc.sc})
			if status.Code(err) != tc.code {
				t.Errorf("CreateSchedule: %v, want %s", err, tc.code)
			}
		})
	}
	list, err := api.ListSchedules(ctx, &secureauditv1.ListSchedulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range list.GetSchedules() {
		found = found || s.GetName() == sc.GetName()
	}
	if !found {
		t.Errorf("ListSchedules lacks %s", sc.GetName())
	}
	if _, err := api.DeleteSchedule(ctx, &secureauditv1.DeleteScheduleRequest{Name: sc.GetName()}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.DeleteSchedule(ctx, &secureauditv1.DeleteScheduleRequest{Name: sc.GetName()}); status.Code(err) != codes.NotFound {
		t.Errorf("deleting twice: %v, want NotFound", err)
	}
}
