package render

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// pathsReport is the escalation-path fixture (testdata/paths/README.md).
func pathsReport(t testing.TB) *secureauditv1.Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "paths", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := &secureauditv1.Report{}
	if err := protojson.Unmarshal(data, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHeadline pins the report's most important issue on fixtures: the
// choke point closing the most paths; without choke points, the first
// proven finding, never a conditional one even when it looks worst; a
// person holding cluster-admin before a ServiceAccount's path of the same
// severity; and no finding at all when every one is conditional.
func TestHeadline(t *testing.T) {
	byName := func(r *secureauditv1.Report, name string) *secureauditv1.Finding {
		for _, f := range r.GetFindings() {
			if f.GetSubject().GetName() == name {
				return f
			}
		}
		t.Fatalf("no finding for %s", name)
		return nil
	}
	tests := []struct {
		name      string
		report    func() *secureauditv1.Report
		wantChoke string // the choke point's binding, or ""
		wantTop   string // the top finding's subject, or ""
	}{
		{"choke point closing the most paths", func() *secureauditv1.Report { return pathsReport(t) },
			"ClusterRoleBinding deployer-admin", "carol"},
		{"worst-looking path is conditional", func() *secureauditv1.Report {
			r := pathsReport(t)
			r.ChokePoints = nil
			// An older or hand-edited report rates the conditional path
			// critical and lists it first: it still is not the headline.
			gina := byName(r, "gina")
			gina.Severity = secureauditv1.Severity_SEVERITY_CRITICAL
			gina.Scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
			r.Findings = append([]*secureauditv1.Finding{gina}, r.Findings...)
			return r
		}, "", "carol"},
		{"person holding cluster-admin", func() *secureauditv1.Report {
			r := pathsReport(t)
			r.ChokePoints = nil
			r.Findings = append(r.Findings, &secureauditv1.Finding{
				Id: "00000000000000aa", RuleId: "RBAC-001", Title: "cluster-admin binding", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
				SeverityReason: "base CRITICAL", Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "root@example.com"},
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "root"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Remediation: "kubectl delete clusterrolebinding root",
			})
			return r
		}, "", "root@example.com"},
		{"an application bound as a User is not a person", func() *secureauditv1.Report {
			r := pathsReport(t)
			r.ChokePoints = nil
			r.Findings = append(r.Findings, &secureauditv1.Finding{
				Id: "00000000000000ab", RuleId: "RBAC-001", Title: "cluster-admin binding", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
				SeverityReason: "base CRITICAL", Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "6e3b9d2a-4c7f-4a1e-8b5d-2f9c0a7e6d14", DisplayName: "app-sync", ServicePrincipal: true},
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "sync"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Remediation: "kubectl delete clusterrolebinding sync",
			})
			return r
		}, "", "carol"},
		{"a choke point closing one path is not the headline", func() *secureauditv1.Report {
			r := pathsReport(t)
			r.ChokePoints = r.ChokePoints[1:]
			return r
		}, "", "carol"},
		{"only conditional findings", func() *secureauditv1.Report {
			r := pathsReport(t)
			r.ChokePoints = nil
			r.Findings = []*secureauditv1.Finding{proto.CloneOf(byName(r, "gina")), proto.CloneOf(byName(r, "nina"))}
			return r
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView(tt.report())
			gotChoke, gotTop := "", ""
			if v.TopChoke != nil {
				gotChoke = v.TopChoke.Binding
			}
			if v.Top != nil {
				gotTop = v.Top.Subject
				if v.Top.Conditional {
					t.Errorf("the top finding %s is conditional", gotTop)
				}
			}
			if gotChoke != tt.wantChoke {
				t.Errorf("headline choke point %q, want %q", gotChoke, tt.wantChoke)
			}
			if (tt.wantTop == "") != (gotTop == "") || tt.wantTop != "" && !hasSubject(gotTop, tt.wantTop) {
				t.Errorf("top finding %q, want subject %q", gotTop, tt.wantTop)
			}
		})
	}
}

// hasSubject reports whether a subject text ("User alice") names name.
func hasSubject(text, name string) bool {
	for _, k := range []string{"User ", "Group ", "ServiceAccount "} {
		if text == k+name {
			return true
		}
	}
	return false
}
