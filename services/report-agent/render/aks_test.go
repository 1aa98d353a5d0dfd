package render

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// aksReport is the sample report with an AKS cluster whose local accounts
// are enabled and whose API server is public, and the two findings about
// them.
func aksReport() *secureauditv1.Report {
	r := sampleReport()
	r.AksCluster = &secureauditv1.AksCluster{
		Id:                   "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks",
		Name:                 "aks",
		KubernetesVersion:    "1.35.0",
		LocalAccountsEnabled: true, KubernetesRbac: true, ManagedEntra: true, AzureRbac: true,
		AdminGroupObjectIds: []string{"2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25"},
		OidcIssuerEnabled:   true, WorkloadIdentityEnabled: true,
	}
	cluster := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	// As the risk-agent's registry sends them: the family and the titles of
	// the controls.
	aks := secureauditv1.RuleFamily_RULE_FAMILY_AKS
	titles := []*secureauditv1.ControlTitle{
		{Id: "CIS-AKS-5.5.1", Title: "Manage Kubernetes RBAC users with Azure AD"},
		{Id: "CIS-AKS-5.4.1", Title: "Restrict Access to the Control Plane Endpoint"},
	}
	r.Findings = append(r.Findings,
		&secureauditv1.Finding{
			Id: "1111111111111111", GrantKey: "1111111111111111", RuleId: "AKS-001", Family: aks, Title: "AKS local accounts enabled", ControlTitles: titles[:1],
			Severity: secureauditv1.Severity_SEVERITY_CRITICAL, SeverityReason: "base HIGH, raised", Scope: cluster,
			Controls: []string{"CIS-AKS-5.5.1", "SOC2-CC6.1"}, Description: "Local accounts are enabled.",
			Remediation: "Disable local accounts.\naz aks update -g rg -n aks --disable-local-accounts",
		},
		&secureauditv1.Finding{
			Id: "3333333333333333", GrantKey: "3333333333333333", RuleId: "AKS-008", Family: aks, Title: "cluster-admin through Azure",
			Severity: secureauditv1.Severity_SEVERITY_MEDIUM, SeverityReason: "base HIGH, lowered", Scope: cluster,
			Subject:  &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25"},
			Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25"},
			Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Controls: []string{"CIS-5.1.1", "SOC2-CC6.3"}, Description: "Members of the admin group are cluster-admin.",
			Remediation: "Review the group's members.",
		},
		&secureauditv1.Finding{
			Id: "2222222222222222", GrantKey: "2222222222222222", RuleId: "AKS-004", Family: aks, Title: "public API server without authorized IP ranges", ControlTitles: titles[1:],
			Severity: secureauditv1.Severity_SEVERITY_MEDIUM, SeverityReason: "base MEDIUM", Scope: cluster,
			Controls: []string{"CIS-AKS-5.4.1", "SOC2-CC6.6"}, Description: "The API server is public.",
			Remediation: "Restrict the API server.",
		},
	)
	return r
}

// TestAKSSection: the AKS configuration section lists every setting with
// a link to the finding judging it, holds the AKS findings (each an entry
// of its own, not among the identity or permission issues), and names the
// CIS AKS Benchmark items by title; without a cluster it says it was not
// evaluated.
func TestAKSSection(t *testing.T) {
	md := string(Markdown(aksReport()))
	start := strings.Index(md, "## AKS configuration")
	end := strings.Index(md, "## Permission issues")
	if start < 0 || end < start {
		t.Fatalf("no AKS configuration section before the permission issues:\n%s", md)
	}
	section := md[start:end]
	for _, want := range []string{
		"| Kubernetes version | 1.35.0 | no finding |",
		"| Local accounts | enabled (listClusterAdminCredential returns a system:masters certificate) | [#",
		"| API server access | public, no authorized IP ranges | [#",
		"| Admin groups | 2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25 (members are cluster-admin without a binding; see the access review) | [#",
		"Medium: cluster-admin through Azure",
		"- **Who is affected:** Group 2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25",
		"| Pod identity add-on (deprecated) | disabled | no finding |",
		"Critical: AKS local accounts enabled",
		"Medium: public API server without authorized IP ranges",
		"CIS-AKS-5.5.1 (Manage Kubernetes RBAC users with Azure AD)",
		"az aks update -g rg -n aks --disable-local-accounts",
		// A setting is reconfigured, not revoked or reviewed as access;
		// the admin group's members are access, judged as such.
		"- **Action:** Reconfigure: change the cluster's setting",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("AKS section lacks %q:\n%s", want, section)
		}
	}
	for _, row := range []string{"| Critical | AKS local accounts enabled | none | cluster-wide | Reconfigure |", "| Medium | public API server without authorized IP ranges | none | cluster-wide | Reconfigure |", "| Medium | cluster-admin through Azure | Group 2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25 | cluster-wide | Review |"} {
		if !strings.Contains(md, row) {
			t.Errorf("summary lacks the row ending %q", row)
		}
	}
	if strings.Contains(section, "Rule hits") {
		t.Errorf("AKS findings were folded into one entry:\n%s", section)
	}
	if other := md[:start] + md[end:]; strings.Contains(other, "### <a id=\"finding-1\"></a>1. Critical: AKS local accounts enabled") {
		t.Error("an AKS finding is also listed outside its section")
	}
	html, err := Document(secureauditv1.ReportFormat_REPORT_FORMAT_HTML, aksReport())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<section id="aks">`, "<td>Local accounts</td>", "AKS local accounts enabled"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if empty := string(Markdown(sampleReport())); !strings.Contains(empty, "## AKS configuration\n\nNot evaluated: the audit had no AKS cluster configuration") {
		t.Error("a report without a cluster does not say the AKS configuration was not evaluated")
	}
}

// TestAzureRouteInReview: a grant through Azure in the access review is
// shown with its role, binding and route in Markdown, HTML and CSV.
func TestAzureRouteInReview(t *testing.T) {
	r := aksReport()
	r.AccessReview = append(r.AccessReview, &secureauditv1.ReviewSubject{
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "nina@contoso.com"},
		Grants: []*secureauditv1.AccessGrant{{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/2", Namespace: "payments"},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: "Azure Kubernetes Service RBAC Writer"},
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "payments"},
			Route:   "Azure Kubernetes Service RBAC Writer on namespace payments: Kubernetes data actions through Azure RBAC for Kubernetes, in namespace payments",
		}},
		Resolved: true,
		Person:   &secureauditv1.Person{UserPrincipalName: "nina@contoso.com", DisplayName: "Nina"},
	})
	md := string(Markdown(r))
	for _, want := range []string{
		"- Azure role Azure Kubernetes Service RBAC Writer through Azure role assignment /subscriptions/s/providers/Microsoft.Authorization/roleAssignments/2 in payments, namespace payments\n" +
			"  - route: Azure Kubernetes Service RBAC Writer on namespace payments: Kubernetes data actions through Azure RBAC for Kubernetes, in namespace payments\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for _, f := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_CSV} {
		out, err := Document(f, r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "(route: Azure Kubernetes Service RBAC Writer on namespace payments") {
			t.Errorf("%s lacks the route", f)
		}
	}
}

// TestEligibleInReview: an eligible Azure role assignment (PIM) is shown
// as eligible, not standing, and a group's eligible member is flagged, in
// Markdown, HTML and CSV.
func TestEligibleInReview(t *testing.T) {
	r := aksReport()
	r.AccessReview = append(r.AccessReview,
		&secureauditv1.ReviewSubject{
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "marco@contoso.com"},
			Grants: []*secureauditv1.AccessGrant{{
				Binding:  &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: "/subscriptions/s/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e"},
				Role:     &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: "Owner"},
				Scope:    &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
				Route:    "eligible through PIM (until 2027-06-30; nothing until activated): Owner on the cluster: listClusterAdminCredential",
				Eligible: true,
			}},
			Resolved: true,
			Person:   &secureauditv1.Person{UserPrincipalName: "marco@contoso.com", DisplayName: "Marco"},
		},
		&secureauditv1.ReviewSubject{
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "0000000a-0000-4000-8000-00000000000a"},
			Grants: []*secureauditv1.AccessGrant{{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: "0000000a-0000-4000-8000-00000000000a"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
			}},
			Resolved: true,
			Members:  []*secureauditv1.Person{{UserPrincipalName: "dana@contoso.com"}, {UserPrincipalName: "priya@contoso.com", Eligible: true}},
		})
	for _, f := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_CSV} {
		out, err := Document(f, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"eligible (PIM, activation needed): Azure role Owner through", "priya@contoso.com (eligible member (PIM), not standing)"} {
			switch {
			case f == secureauditv1.ReportFormat_REPORT_FORMAT_CSV && strings.HasPrefix(want, "priya"):
				want = "priya@contoso.com" // the CSV lists members by name
			case f == secureauditv1.ReportFormat_REPORT_FORMAT_HTML && strings.HasPrefix(want, "priya"):
				want = `priya@contoso.com <span class="flag">(eligible member (PIM), not standing)</span>`
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
		if strings.Contains(string(out), "dana@contoso.com (eligible") {
			t.Errorf("%s marks a standing member eligible", f)
		}
	}
}

// TestReviewMembersByKind: a bound group's members in the access review
// are everyone its binding reaches, by kind: people, service principals and
// IDs the directory snapshot lacks, nested ones named with their group, in
// Markdown, HTML and CSV; the count is never only the people.
func TestReviewMembersByKind(t *testing.T) {
	r := aksReport()
	r.DirectoryAvailable = true
	r.AccessReview = append(r.AccessReview, &secureauditv1.ReviewSubject{
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "9d0c2f3a-6b1e-4c8d-a7f5-2e4b6d8a0c1e", DisplayName: "sg-ops"},
		Grants: []*secureauditv1.AccessGrant{{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "ops"},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		}},
		Resolved: true,
		Members: []*secureauditv1.Person{
			{UserPrincipalName: "carol@contoso.com", DisplayName: "Carol"},
			{UserPrincipalName: "lena@contoso.com", DisplayName: "Lena", ViaGroup: "sg-oncall"},
			{DisplayName: "sp-deploy", ServicePrincipal: true},
			{DisplayName: "4b1f0c2e-0000-4000-8000-000000000001", Unresolved: true},
		},
	})
	md := string(Markdown(r))
	for _, want := range []string{
		"- **Members:** 2 people, 1 service principal and 1 unknown member, nested groups included (0 guests, 0 disabled)\n",
		"  - Lena \\<lena@contoso.com\\> (through nested group sg-oncall)\n",
		"  - sp-deploy (service principal)\n",
		"  - 4b1f0c2e-0000-4000-8000-000000000001 (object ID the directory snapshot does not hold)\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	for f, want := range map[secureauditv1.ReportFormat]string{
		secureauditv1.ReportFormat_REPORT_FORMAT_HTML: "2 people, 1 service principal and 1 unknown member, nested groups included",
		secureauditv1.ReportFormat_REPORT_FORMAT_CSV:  "sp-deploy (service principal)",
	} {
		out, err := Document(f, r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %q", f, want)
		}
	}
}

// TestCredentialAction: an ENTRA-013 finding is fixed on the credential:
// a secret beside a federated credential is removed with the exact delete
// command (never "Revoke"), an old secret rotated, in Markdown and HTML
// (the CSV is the access review, without findings); the legend names the credential actions only when one is taken.
func TestCredentialAction(t *testing.T) {
	r := sampleReport()
	identity := secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
	del := "az ad app credential delete --id 00000068-0000-4000-8000-000000000068 --key-id 00000fa1-0000-4000-8000-000000000fa1"
	rot := "az ad app credential delete --id 00000067-0000-4000-8000-000000000067 --key-id 00000bb9-0000-4000-8000-000000000bb9"
	sp := func(n string) *secureauditv1.SubjectRef {
		return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: n, DisplayName: "app-" + n[len(n)-2:], ServicePrincipal: true}
	}
	r.Findings = append(r.Findings,
		&secureauditv1.Finding{
			Id: "5555555555555555", GrantKey: "5555555555555555", RuleId: "ENTRA-013", Family: identity, Title: "Application credential hygiene",
			Severity: secureauditv1.Severity_SEVERITY_HIGH, SeverityReason: "base MEDIUM; beside a federated credential: -> HIGH",
			Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Subject: sp("00000004-0000-4000-8000-000000000004"),
			Controls: []string{"SOC2-CC6.1"}, Description: "It trusts a federated credential and still holds a client secret.",
			Remediation: "Delete the credentials. Command: " + del, CredentialFix: secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE, CredentialCommand: del,
		},
		&secureauditv1.Finding{
			Id: "6666666666666666", GrantKey: "6666666666666666", RuleId: "ENTRA-013", Family: identity, Title: "Application credential hygiene",
			Severity: secureauditv1.Severity_SEVERITY_MEDIUM, SeverityReason: "base MEDIUM; a client secret past the rotation age",
			Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Subject: sp("00000007-0000-4000-8000-000000000007"),
			Controls: []string{"SOC2-CC6.1"}, Description: "It holds a client secret created 2025-03-20.",
			Remediation: "Rotate. Command: " + rot, CredentialFix: secureauditv1.CredentialFix_CREDENTIAL_FIX_ROTATE, CredentialCommand: rot,
		},
	)
	for _, f := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_HTML} {
		out, err := Document(f, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"Remove the credential", "delete the secret or certificate held beside the federated credential (the application keeps signing in through the federation): " + del,
			"Rotate the credential", "then delete the old one: " + rot,
			// An application is named as one, never as "User <object ID>".
			"Service principal app-04 (object ID 00000004-0000-4000-8000-000000000004, bound as a User)",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
	}
	md, err := Document(secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "**Remove the credential**: delete the application's client secret") {
		t.Error("the Markdown legend lacks the credential action a finding takes")
	}
	for _, line := range strings.Split(string(md), "\n") {
		if strings.Contains(line, "00000004-0000-4000-8000-000000000004") && strings.Contains(line, "| Revoke |") {
			t.Errorf("the credential finding is told to revoke: %s", line)
		}
		if strings.Contains(line, "User 00000004-0000-4000-8000-000000000004") {
			t.Errorf("the service principal is shown as a user: %s", line)
		}
	}
	plain, err := Document(secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), "Remove the credential") {
		t.Error("a report without credential findings names the credential actions")
	}
}

// TestActivatedInReview: a group member present through a PIM for Groups
// activation is marked activated with the end time, one without an end
// says so, and an eligible owner is marked among the owners, in Markdown,
// HTML and CSV.
func TestActivatedInReview(t *testing.T) {
	r := aksReport()
	r.AccessReview = append(r.AccessReview, &secureauditv1.ReviewSubject{
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "0000000a-0000-4000-8000-00000000000a"},
		Grants: []*secureauditv1.AccessGrant{{
			Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP, Name: "0000000a-0000-4000-8000-00000000000a"},
			Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
			Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		}},
		Resolved: true,
		Members: []*secureauditv1.Person{
			{UserPrincipalName: "dana@contoso.com"},
			{UserPrincipalName: "jun@contoso.com", Activated: true, ActivatedUntil: timestamppb.New(time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC))},
			{UserPrincipalName: "omar@contoso.com", Activated: true},
		},
		Owners: []*secureauditv1.Person{{UserPrincipalName: "erin@contoso.com"}, {UserPrincipalName: "priya@contoso.com", Eligible: true}},
	})
	for _, f := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_CSV} {
		out, err := Document(f, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"jun@contoso.com (activated through PIM until 2026-12-07 16:30 UTC, not standing)",
			"omar@contoso.com (activated through PIM (no end given), not standing)",
			"priya@contoso.com (eligible owner (PIM), not standing)",
		} {
			if f == secureauditv1.ReportFormat_REPORT_FORMAT_HTML && !strings.HasPrefix(want, "priya") {
				name, flag, _ := strings.Cut(want, " (")
				want = name + ` <span class="flag">(` + flag + `</span>`
			}
			if !strings.Contains(string(out), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
		if strings.Contains(string(out), "dana@contoso.com (activated") || strings.Contains(string(out), "erin@contoso.com (eligible") {
			t.Errorf("%s marks a standing member or owner", f)
		}
	}
}
