package render

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// findingID matches a finding ID in report.md.
var findingID = regexp.MustCompile(`\b[0-9a-f]{16}\b`)

// actionsReport is a report with every action: a person's critical grant
// (two hits), a high identity finding, a high permission finding, a
// critical grant whose binding the add-on manager reconciles, an
// application credential, a cluster setting, an installed component's
// critical grant and another ServiceAccount's, a group's critical grant and
// a low finding.
func actionsReport() *secureauditv1.Report {
	cluster := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"}
	user := func(name string) *secureauditv1.SubjectRef {
		return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: name}
	}
	hit := func(id, rule string, sev secureauditv1.Severity, subject *secureauditv1.SubjectRef, binding string) *secureauditv1.Finding {
		return &secureauditv1.Finding{
			Id: id, RuleId: rule, Title: rule + " hit", Severity: sev, SeverityReason: "base", Subject: subject,
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: binding},
			Role:    role, Scope: cluster, Remediation: "Fix it.", GrantKey: "000000000000" + id[12:],
		}
	}
	crit, high, low := secureauditv1.Severity_SEVERITY_CRITICAL, secureauditv1.Severity_SEVERITY_HIGH, secureauditv1.Severity_SEVERITY_LOW
	daveAgain := hit("00000000000000a2", "RBAC-017", high, user("dave"), "dave-admin")
	daveAgain.GrantKey = "00000000000000a1" // the same grant as a1
	reconciled := hit("00000000000000d1", "RBAC-001", crit, user("alice"), "alice-admin")
	reconciled.BindingReconciled = true
	credential := hit("00000000000000e1", "ENTRA-013", high, user("00000004-0000-4000-8000-000000000004"), "app-view")
	credential.CredentialFix = secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE
	credential.CredentialCommand = "az ad app credential delete --id 00000004-0000-4000-8000-000000000004 --key-id k"
	setting := &secureauditv1.Finding{Id: "00000000000000f1", RuleId: "AKS-001", Title: "local accounts enabled", Severity: crit, SeverityReason: "base",
		Family: secureauditv1.RuleFamily_RULE_FAMILY_AKS, Scope: cluster, Remediation: "az aks update --disable-local-accounts", GrantKey: "00000000000000f1"}
	component := hit("00000000000000ab", "RBAC-001", crit, &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "ops", Name: "ctl"}, "ctl")
	component.Component = true
	r := asSent(&secureauditv1.Report{Cluster: "c", DirectoryAvailable: true, Findings: []*secureauditv1.Finding{
		hit("00000000000000a1", "RBAC-001", crit, user("dave"), "dave-admin"),
		daveAgain,
		hit("00000000000000b1", "ENTRA-002", high, user("mallory"), "mallory-view"),
		hit("00000000000000c1", "RBAC-017", high, user("erin"), "erin-tokens"),
		reconciled,
		credential,
		setting,
		component,
		hit("00000000000000ac", "RBAC-001", crit, &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "default", Name: "old"}, "old-admin"),
		hit("00000000000000ad", "RBAC-001", crit, &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "contractors"}, "contractors-admin"),
		hit("00000000000000ae", "RBAC-020", low, user("jo"), "jo-view"),
	}})
	// asSent gives the rules it knows their family; these are set here.
	credential.Family = secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
	setting.Family = secureauditv1.RuleFamily_RULE_FAMILY_AKS
	return r
}

// TestRevokeFindingsAreTheReportsRevokeRows: the findings RevokeFindings
// names (the ones the orchestrator tracks as revocations) are exactly the
// findings the report's SARIF marks Revoke, and the entries report.md
// gives the action Revoke, over a report holding every action.
func TestRevokeFindingsAreTheReportsRevokeRows(t *testing.T) {
	r := actionsReport()
	got := RevokeFindings(r)
	want := []string{"00000000000000a1", "00000000000000ac", "00000000000000ad", "00000000000000a2", "00000000000000b1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RevokeFindings (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := Write(&buf, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID              string            `json:"ruleId"`
				PartialFingerprints map[string]string `json:"partialFingerprints"`
				Properties          struct {
					Action string `json:"action"`
				} `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var sarifRevoke []string
	actions := map[string]bool{}
	for _, res := range doc.Runs[0].Results {
		id := res.PartialFingerprints[FingerprintKey]
		if strings.HasPrefix(id, "choke/") {
			continue
		}
		actions[res.Properties.Action] = true
		if res.Properties.Action == string(ActionRevoke) {
			sarifRevoke = append(sarifRevoke, id)
		}
	}
	if diff := cmp.Diff(want, sarifRevoke); diff != "" {
		t.Errorf("SARIF results marked Revoke (-RevokeFindings +SARIF):\n%s", diff)
	}
	for _, a := range []Action{ActionRevoke, ActionInvestigate, ActionReview, ActionReconfigure, ActionRemoveCredential} {
		if !actions[string(a)] {
			t.Errorf("the report has no %q action: the mix does not test it (actions %v)", a, actions)
		}
	}
	if !actions[string(ActionAccept)] && !actions[string(ActionReduce)] {
		t.Errorf("the component's grant is neither accepted nor reduced (actions %v)", actions)
	}
	// report.md, whose entries take their action on another path: the
	// findings of its entries marked Revoke are the same.
	var mdRevoke []string
	for _, block := range strings.Split(string(Markdown(r)), "\n### ")[1:] {
		if !strings.Contains(block, "\n- **Action:** Revoke:") {
			continue
		}
		for _, id := range findingID.FindAllString(block, -1) {
			if !slices.Contains(mdRevoke, id) {
				mdRevoke = append(mdRevoke, id)
			}
		}
	}
	slices.Sort(mdRevoke)
	sorted := slices.Sorted(slices.Values(got))
	if diff := cmp.Diff(sorted, mdRevoke); diff != "" {
		t.Errorf("findings of report.md's entries marked Revoke (-RevokeFindings +report.md):\n%s", diff)
	}
}
