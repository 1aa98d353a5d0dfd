package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// grantReport is a report of one installed component's cluster-wide grant
// hit by three rules and a token automount, and a person's grant.
func grantReport(component bool) *secureauditv1.Report {
	sa := &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "ops", Name: "ctl"}
	crb := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "ctl"}
	role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "ctl"}
	cluster := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	secrets := []*secureauditv1.PolicyRule{{Verbs: []string{"get", "list"}, ApiGroups: []string{""}, Resources: []string{"secrets"}}}
	hit := func(id, rule, title string, sev secureauditv1.Severity) *secureauditv1.Finding {
		return &secureauditv1.Finding{
			Id: id, RuleId: rule, Title: title, Severity: sev, SeverityReason: "base", Subject: sa, Binding: crb, Role: role,
			Scope: cluster, MatchedRules: secrets, Remediation: "Narrow it.", GrantKey: "00000000000000aa", Component: component,
			Workloads: []*secureauditv1.WorkloadRef{{Kind: "Deployment", Namespace: "ops", Name: "ctl", Images: []string{"example.io/ctl:1.2"}}},
		}
	}
	jane := &secureauditv1.Finding{
		Id: "00000000000000f1", RuleId: "RBAC-003", Title: "secrets readable", Severity: secureauditv1.Severity_SEVERITY_CRITICAL,
		SeverityReason: "base", Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "jane"},
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "jane"},
		Role:    role, Scope: cluster, Remediation: "Remove it.", GrantKey: "00000000000000bb",
	}
	return asSent(&secureauditv1.Report{Cluster: "c", Findings: []*secureauditv1.Finding{
		hit("00000000000000a1", "RBAC-003", "secrets readable", secureauditv1.Severity_SEVERITY_CRITICAL),
		hit("00000000000000a2", "RBAC-017", "ServiceAccount tokens mintable", secureauditv1.Severity_SEVERITY_HIGH),
		hit("00000000000000a3", "RBAC-012", "ServiceAccount token automounted", secureauditv1.Severity_SEVERITY_LOW),
		jane,
	}})
}

func TestEntriesInMarkdown(t *testing.T) {
	tests := []struct {
		name      string
		component bool
		want      []string
	}{{
		name:      "an installed component's grant is reduced, a person's revoked",
		component: true,
		want: []string{
			"| [1](#finding-1) | Critical | secrets readable | ServiceAccount ctl in ops | cluster-wide | Reduce scope |",
			"| [2](#finding-2) | Critical | secrets readable | User jane | cluster-wide | Revoke |",
		},
	}, {
		name: "a ServiceAccount that is no component keeps the severity's action",
		want: []string{
			"| [1](#finding-1) | Critical | secrets readable | ServiceAccount ctl in ops | cluster-wide | Revoke |",
			"| [2](#finding-2) | Critical | secrets readable | User jane | cluster-wide | Revoke |",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			md := string(Markdown(grantReport(tc.component)))
			var rows []string
			for line := range strings.SplitSeq(md, "\n") {
				if strings.HasPrefix(line, "| [") {
					rows = append(rows, line)
				}
			}
			if diff := cmp.Diff(tc.want, rows); diff != "" {
				t.Errorf("summary rows, one per grant (-want +got):\n%s", diff)
			}
			for _, s := range []string{
				"| Critical | 2 | 4 | 0 |",
				"It found 2 issues: 2 critical. The list has one entry per risky grant (subject, binding, role, scope), holding the 4 rule hits",
				"- **Capabilities:** secrets readable, ServiceAccount tokens mintable, ServiceAccount token automounted\n",
				"- **Runs as it:** Deployment ops/ctl (example.io/ctl:1.2)\n",
				"- **Rule hits (3, each a result in report.json and SARIF):** RBAC-003 Critical 00000000000000a1, RBAC-017 High 00000000000000a2, RBAC-012 Low 00000000000000a3\n",
			} {
				if !strings.Contains(md, s) {
					t.Errorf("report.md lacks %q", s)
				}
			}
			if tc.component && !strings.Contains(md, "Reduce scope: limit secrets in ClusterRole ctl to resourceNames of the Secrets the component manages; bind per namespace instead of cluster-wide") {
				t.Errorf("the component's action does not spell out the narrower grant:\n%s", md)
			}
		})
	}
}

// TestSubjectMissing: an entry whose ServiceAccount the snapshot lacks says
// so, in Markdown and HTML; one that exists does not.
func TestSubjectMissing(t *testing.T) {
	r := grantReport(true)
	for _, f := range r.GetFindings() {
		if f.GetSubject().GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			f.SubjectMissing = true
			f.Workloads = nil
		}
	}
	md := string(Markdown(r))
	want := "- **Who is affected:** ServiceAccount ctl in ops; " + subjectMissingText + "; **Current access:**"
	if !strings.Contains(md, want) {
		t.Errorf("report.md lacks %q:\n%s", want, md)
	}
	if n := strings.Count(md, subjectMissingText); n != 1 {
		t.Errorf("the latent grant is said %d times, want once (jane exists)", n)
	}
	html, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "; "+subjectMissingText+"</dd>") {
		t.Errorf("report.html does not say the ServiceAccount is missing")
	}
	if md := string(Markdown(grantReport(true))); strings.Contains(md, subjectMissingText) {
		t.Errorf("a ServiceAccount that exists is said to be missing")
	}
}

// TestReconciledBinding: a person's critical grant through a binding the
// add-on manager reconciles is investigated (deleting it would be undone if
// the platform ships it), never plainly revoked; the same grant through an
// ordinary binding is revoked.
func TestReconciledBinding(t *testing.T) {
	for _, reconciled := range []bool{false, true} {
		r := grantReport(false)
		for _, f := range r.GetFindings() {
			if f.GetSubject().GetName() == "jane" {
				f.BindingReconciled = reconciled
			}
		}
		md := string(Markdown(r))
		want := "| [2](#finding-2) | Critical | secrets readable | User jane | cluster-wide | Revoke |"
		if reconciled {
			want = "| [2](#finding-2) | Critical | secrets readable | User jane | cluster-wide | Investigate |"
			if !strings.Contains(md, "deleting it is undone at the next reconcile") {
				t.Errorf("the reconciled binding's action does not say why it is not deleted:\n%s", md)
			}
		}
		if !strings.Contains(md, want) {
			t.Errorf("reconciled=%v: report.md lacks %q:\n%s", reconciled, want, md)
		}
	}
}

// TestIdentityFindingThroughTwoBindings: an identity finding (here a stale
// account) found through two bindings of the person is one entry that names
// the other binding as the same finding through it: no role ("none"), and
// neither "narrower" nor "broader", which compare grants, not facts about a
// person.
func TestIdentityFindingThroughTwoBindings(t *testing.T) {
	jun := &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "jun@example.com"}
	web := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "web"}
	stale := func(id, binding, key string) *secureauditv1.Finding {
		return &secureauditv1.Finding{
			Id: id, RuleId: "ENTRA-010", Family: secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY, Title: "stale account with cluster access",
			Severity: secureauditv1.Severity_SEVERITY_MEDIUM, SeverityReason: "base", Subject: jun,
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Namespace: "web", Name: binding},
			Scope:   web, Remediation: "Confirm the access is still needed.", GrantKey: key,
		}
	}
	r := asSent(&secureauditv1.Report{Cluster: "c", DirectoryAvailable: true, Findings: []*secureauditv1.Finding{
		stale("00000000000000c1", "web-devs-debug", "00000000000000d1"),
		stale("00000000000000c2", "web-devs-edit", "00000000000000d2"),
	}})
	md := string(Markdown(r))
	h, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	html := string(h)
	for _, bad := range []string{"none through", "held more narrowly", "held more broadly"} {
		if strings.Contains(md, bad) || strings.Contains(html, bad) {
			t.Errorf("the report says %q of a finding about a person", bad)
		}
	}
	if !strings.Contains(md, "- **Also through (the same finding, folded here):** RoleBinding web-devs-") ||
		!strings.Contains(md, "the same finding through another binding: ENTRA-010 Medium 00000000000000c") {
		t.Errorf("report.md does not name the other binding as the same finding:\n%s", md)
	}
	if !strings.Contains(html, "Also through (the same finding, folded here)") {
		t.Error("report.html does not name the other binding as the same finding")
	}
}

// TestInformationalHits: a grant whose only hit is informational (INFO, a
// ServiceAccount) is no entry of the list and no summary row, is listed in
// its own section of report.md and report.html, and still counts among
// the rule hits and against its controls in OSCAL.
func TestInformationalHits(t *testing.T) {
	r := grantReport(true)
	info := &secureauditv1.Finding{
		Id: "00000000000000c1", RuleId: "RBAC-003", Title: "secrets readable", Severity: secureauditv1.Severity_SEVERITY_INFO,
		SeverityReason: "base HIGH; only named Secrets of its own namespace, read by an installed component's workload identity: at most INFO -> INFO",
		Subject:        &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "web", Name: "certs"},
		Binding:        &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Namespace: "web", Name: "certs"},
		Role:           &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Namespace: "web", Name: "certs"},
		Scope:          &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "web"},
		Remediation:    "Nothing to do.", GrantKey: "00000000000000cc", Component: true, Family: secureauditv1.RuleFamily_RULE_FAMILY_RBAC,
		Controls: []string{"CIS-5.1.2"},
	}
	r.Findings = append(r.Findings, info)
	r = asSent(r)
	md := string(Markdown(r))
	for _, s := range []string{
		"| Info | 0 | 1 | 0 |",
		"| **Total** | **2** | **5** | **0** |",
		"## Informational hits\n",
		"| 1 | RBAC-003 | secrets readable | ServiceAccount certs in web | Role certs in web through RoleBinding certs in web, namespace web | base HIGH; only named Secrets of its own namespace, read by an installed component's workload identity: at most INFO -\\> INFO |",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	if strings.Contains(md, "| [3](#finding-3)") || strings.Contains(md, "Info: secrets readable") {
		t.Errorf("the informational hit is an entry of the list:\n%s", md)
	}
	html, err := HTML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), `<section id="informational">`) || !strings.Contains(string(html), `id="info-1"`) {
		t.Errorf("report.html lacks the informational section")
	}
	oscal, err := OSCAL(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(oscal), "00000000000000c1") {
		t.Errorf("OSCAL does not cite the informational hit")
	}
}

// TestAggregatedRoleAction: a component's grant through an aggregated
// ClusterRole whose rules the risk-agent traced to their contributors is
// narrowed there, not at the binding; without that trace the binding is.
func TestAggregatedRoleAction(t *testing.T) {
	for _, tc := range []struct {
		remediation, want string
	}{
		{"Drop them. Command: kubectl edit clusterrole ctl-core and drop create clusterpolicies (ClusterRole ctl only aggregates the rules: the aggregation controller overwrites edits of it)",
			"Reduce scope: leave ClusterRole ctl as it is (it only aggregates the rules of other ClusterRoles, and the API server rewrites it); narrow the ClusterRoles that contribute the rules, as the fix names"},
		{"Drop them. Command: kubectl edit clusterrole ctl and drop create clusterpolicies",
			"Reduce scope: leave ClusterRole ctl as it is (the API server rewrites it: aggregated or bootstrap role); narrow the binding instead"},
	} {
		r := grantReport(true)
		for _, f := range r.GetFindings() {
			if f.GetSubject().GetName() == "ctl" {
				f.RoleReconciled = true
				f.Remediation = tc.remediation
			}
		}
		if md := string(Markdown(asSent(r))); !strings.Contains(md, tc.want) {
			t.Errorf("report.md lacks %q", tc.want)
		}
	}
}
