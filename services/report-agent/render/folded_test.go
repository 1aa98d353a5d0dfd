package render

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestFoldedControls: a finding with rule hits folded into it (RBAC-001 for
// a bound '*/*/*', standing for RBAC-004 and RBAC-016) makes their controls
// not satisfied in OSCAL, lists them in the Markdown and in the SARIF
// result, and names the folded rules.
func TestFoldedControls(t *testing.T) {
	r := asSent(&secureauditv1.Report{
		AuditId: "00000000-0000-4000-8000-000000000021", Cluster: "c", GeneratedAt: timestamppb.Now(),
		Findings: []*secureauditv1.Finding{{
			Id: "0123456789abcdef", RuleId: "RBAC-001", Title: "cluster-admin or equivalent bound",
			Severity: secureauditv1.Severity_SEVERITY_HIGH, SeverityReason: "every verb on every resource",
			Subject:  &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "dev@example.com"},
			Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "everything", Namespace: "team-a"},
			Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "everything", Namespace: "team-a"},
			Scope:    &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "team-a"},
			Controls: []string{"CIS-5.1.1", "SOC2-CC6.3"}, Remediation: "kubectl -n team-a delete rolebinding everything",
			Folded: []*secureauditv1.FoldedHit{
				{RuleId: "RBAC-004", Controls: []string{"CIS-5.1.3", "SOC2-CC6.3"}},
				{RuleId: "RBAC-016", Controls: []string{"CIS-5.1.12", "SOC2-CC6.3"}},
			},
		}},
	})
	data, err := OSCAL(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AR struct {
			Results []struct {
				Findings []struct {
					Description string `json:"description"`
					Target      struct {
						TargetID string `json:"target-id"`
						Status   struct {
							State string `json:"state"`
						} `json:"status"`
					} `json:"target"`
				} `json:"findings"`
			} `json:"results"`
		} `json:"assessment-results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, f := range doc.AR.Results[0].Findings {
		state[f.Target.TargetID] = f.Target.Status.State
		if f.Target.TargetID == "cis-5.1.3" && !strings.Contains(f.Description, "1 of them cites it through a rule hit folded") {
			t.Errorf("cis-5.1.3 description = %q, want it to say the citation is folded", f.Description)
		}
	}
	for c, want := range map[string]string{
		"cis-5.1.1": "not-satisfied", "cis-5.1.3": "not-satisfied", "cis-5.1.12": "not-satisfied",
		"soc2-cc6.3": "not-satisfied", "cis-5.1.2": "satisfied", "cis-5.1.13": "satisfied",
	} {
		if state[c] != want {
			t.Errorf("%s is %q, want %q", c, state[c], want)
		}
	}

	md := string(Markdown(r))
	for _, want := range []string{"CIS-5.1.3 (Minimize wildcard use in Roles and ClusterRoles)", "also stands for RBAC-004, RBAC-016 on the same grant"} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	html, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "also stands for RBAC-004, RBAC-016 on the same grant") {
		t.Errorf("report.html does not name the folded rules")
	}
	sarif, err := SARIF(r)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []struct {
				Properties struct {
					Controls []string `json:"controls"`
				} `json:"properties"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(sarif, &log); err != nil {
		t.Fatal(err)
	}
	if got := log.Runs[0].Results[0].Properties.Controls; !slices.Equal(got, []string{"CIS-5.1.1", "SOC2-CC6.3", "CIS-5.1.3", "CIS-5.1.12"}) {
		t.Errorf("SARIF result controls = %v", got)
	}
}
