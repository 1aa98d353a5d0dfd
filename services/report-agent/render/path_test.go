package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestFindingPath(t *testing.T) {
	tests := []struct {
		name string
		desc string
		want []string
	}{
		{"none", "cluster-admin grants every verb.", nil},
		{"one step", "The subject is not cluster-admin. Path (1 steps): 1. User a --[can impersonate system:masters (via X)]--> cluster-admin.",
			[]string{"User a \u2014[can impersonate system:masters (via X)]\u2192 cluster-admin"}},
		{"three steps", "Why. Path (3 steps): 1. SA d/b --[reads secrets; all of them]--> any ServiceAccount; 2. any ServiceAccount --[includes]--> SA ci/g; 3. SA ci/g --[holds *]--> cluster-admin.",
			[]string{"SA d/b \u2014[reads secrets; all of them]\u2192 any ServiceAccount", "any ServiceAccount \u2014[includes]\u2192 SA ci/g", "SA ci/g \u2014[holds *]\u2192 cluster-admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findingPath(&secureauditv1.Finding{Description: tt.desc})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findingPath (-want +got):\n%s", diff)
			}
		})
	}
}

// A structured path is rendered from its steps, whatever the description says.
func TestFindingPathStructured(t *testing.T) {
	f := &secureauditv1.Finding{
		Description: "Path (1 steps): 1. User x --[stale text]--> cluster-admin.",
		Path: []*secureauditv1.PathStep{
			{From: "ServiceAccount ci/deployer", Capability: "creates pods in ci with any ServiceAccount",
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "deployer", Namespace: "ci"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "pods", Namespace: "ci"},
				To:      "any ServiceAccount of namespace ci"},
			{From: "any ServiceAccount of namespace ci", Capability: "includes", To: "ServiceAccount ci/admin"},
		},
	}
	want := []string{
		"ServiceAccount ci/deployer \u2014[creates pods in ci with any ServiceAccount (via " + bindingText(f.Path[0].Binding) + ", " + roleText(f.Path[0].Role) + ")]\u2192 any ServiceAccount of namespace ci",
		"any ServiceAccount of namespace ci \u2014[includes]\u2192 ServiceAccount ci/admin",
	}
	if diff := cmp.Diff(want, findingPath(f)); diff != "" {
		t.Errorf("findingPath (-want +got):\n%s", diff)
	}
}

// withPath is the sample report with an escalation path finding that has
// a structured path.
func withPath() *secureauditv1.Report {
	r := sampleReport()
	r.Findings = append(r.Findings, &secureauditv1.Finding{
		Id: "7a6b5c4d3e2f1a0b", RuleId: "PATH-001", Title: "escalation path to cluster-admin",
		Severity: secureauditv1.Severity_SEVERITY_CRITICAL, SeverityReason: "base CRITICAL (reaches cluster-admin in 2 steps)",
		Subject:  &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "deployer", Namespace: "ci"},
		Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "deployer", Namespace: "ci"},
		Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "pods", Namespace: "ci"},
		Scope:    &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "ci"},
		Controls: []string{"CIS-5.1.1", "SOC2-CC6.3"}, Remediation: "Break the path at its first step.",
		Description: "A chain of permissions. Path (2 steps): 1. ServiceAccount ci/deployer --[creates pods]--> any ServiceAccount of namespace ci; 2. any ServiceAccount of namespace ci --[includes]--> cluster-admin.",
		Path: []*secureauditv1.PathStep{
			{From: "ServiceAccount ci/deployer", Capability: "creates pods in ci with any ServiceAccount",
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "deployer", Namespace: "ci"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "pods", Namespace: "ci"},
				To:      "any ServiceAccount of namespace ci"},
			{From: "any ServiceAccount of namespace ci", Capability: "includes ServiceAccount ci/admin, bound to cluster-admin", To: "cluster-admin"},
		},
	})
	return asSent(r)
}

// SARIF carries a structured path as a code flow: one location per step,
// at the binding granting it when there is one.
func TestSARIFCodeFlow(t *testing.T) {
	data, err := SARIF(withPath())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				CodeFlows []struct {
					ThreadFlows []struct {
						Locations []struct {
							Location struct {
								Message          struct{ Text string }
								PhysicalLocation *struct {
									ArtifactLocation struct{ URI string } `json:"artifactLocation"`
								} `json:"physicalLocation"`
							} `json:"location"`
						} `json:"locations"`
					} `json:"threadFlows"`
				} `json:"codeFlows"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	flows := 0
	for _, r := range doc.Runs[0].Results {
		if r.RuleID != "PATH-001" {
			if len(r.CodeFlows) != 0 {
				t.Errorf("%s has a code flow", r.RuleID)
			}
			continue
		}
		flows++
		if len(r.CodeFlows) != 1 || len(r.CodeFlows[0].ThreadFlows) != 1 {
			t.Fatalf("PATH-001 code flows = %+v", r.CodeFlows)
		}
		locs := r.CodeFlows[0].ThreadFlows[0].Locations
		if len(locs) != 2 {
			t.Fatalf("%d locations, want one per step (2)", len(locs))
		}
		if p := locs[0].Location.PhysicalLocation; p == nil || p.ArtifactLocation.URI != "k8s/aks-prod-weu/ci/rolebindings/deployer" {
			t.Errorf("step 1 location = %+v, want the RoleBinding ci/deployer", p)
		}
		if locs[1].Location.PhysicalLocation != nil {
			t.Error("a step without a grant has a physical location")
		}
		if !strings.HasPrefix(locs[0].Location.Message.Text, "1. ServiceAccount ci/deployer") || !strings.HasPrefix(locs[1].Location.Message.Text, "2. any ServiceAccount") {
			t.Errorf("step messages = %q, %q", locs[0].Location.Message.Text, locs[1].Location.Message.Text)
		}
	}
	if flows != 1 {
		t.Errorf("%d PATH-001 results, want 1", flows)
	}
}
