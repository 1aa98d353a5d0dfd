package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// hostile is an object name crafted to break a table, inject a link and HTML.
const hostile = "evil|name](http://x)<img>"

func sampleReport() *secureauditv1.Report {
	r := sampleFindings()
	group := r.GetFindings()[0].GetSubject()
	r.AccessReview = []*secureauditv1.ReviewSubject{
		{
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "guest_partner#EXT#@contoso.onmicrosoft.com"},
			Grants: []*secureauditv1.AccessGrant{{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "legacy-ops", Namespace: "payments"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "ops", Namespace: "payments", Missing: true},
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "payments"},
			}},
			Resolved: true,
			Person:   &secureauditv1.Person{UserPrincipalName: "guest_partner#EXT#@contoso.onmicrosoft.com", DisplayName: "Partner <b>Guest</b>", Guest: true},
		},
		{
			Subject: group,
			Grants: []*secureauditv1.AccessGrant{{
				Binding: r.GetFindings()[0].GetBinding(),
				Role:    r.GetFindings()[0].GetRole(),
				Scope:   r.GetFindings()[0].GetScope(),
			}},
			Resolved:    true,
			Description: "Platform team " + hostile,
			Members: []*secureauditv1.Person{
				{UserPrincipalName: "alice@contoso.com", DisplayName: "Alice Admin"},
				{UserPrincipalName: "bob@contoso.com", DisplayName: "Bob Builder", Disabled: true},
			},
			Owners: []*secureauditv1.Person{{UserPrincipalName: "carol@contoso.com", DisplayName: "Carol Owner"}},
		},
		{
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "9d8c7b6a-0000-4000-8000-000000000001"},
			Grants: []*secureauditv1.AccessGrant{{
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "viewers", Namespace: "team-a"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
				Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "team-a"},
			}},
		},
	}
	r.History = &secureauditv1.AuditHistory{
		PreviousAuditId:     "11111111-2222-4333-8444-555555555555",
		PreviousGeneratedAt: timestamppb.New(time.Date(2025, 3, 7, 8, 0, 0, 0, time.UTC)),
		NewFindingIds:       []string{"1b2c3d4e5f607182"},
		Changed: []*secureauditv1.FindingChange{{
			FindingId: "0a1b2c3d4e5f6071", PreviousSeverity: secureauditv1.Severity_SEVERITY_HIGH,
			Severity: secureauditv1.Severity_SEVERITY_CRITICAL, Fields: []string{"severity"},
		}},
		Resolved: []*secureauditv1.Finding{{
			Id: "6a7b8c9d0e1f2a3b", RuleId: "RBAC-004", Title: "wildcard in a bound role",
			Severity: secureauditv1.Severity_SEVERITY_MEDIUM, SeverityReason: "base MEDIUM",
			Subject:     &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "old-admin@contoso.com"},
			Binding:     &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "old", Namespace: "team-a"},
			Role:        &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "old", Namespace: "team-a"},
			Scope:       &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "team-a"},
			Remediation: "kubectl delete rolebinding old -n team-a",
		}},
	}
	return r
}

func sampleFindings() *secureauditv1.Report {
	cluster := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	ns := func(n string) *secureauditv1.Scope {
		return &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: n}
	}
	return asSent(&secureauditv1.Report{
		AuditId:     "8f14e45f-ceea-4e6b-9c3a-2d1f0b7a5c11",
		Cluster:     "aks-prod-weu",
		GeneratedAt: timestamppb.New(time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))),
		Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE,
		Origin:      "examples/cluster",
		Counts: &secureauditv1.ObjectCounts{
			Namespaces: 6, Roles: 4, ClusterRoles: 71, RoleBindings: 9,
			ClusterRoleBindings: 58, ServiceAccounts: 12, Workloads: 1,
		},
		Skipped:              map[string]uint32{"Node": 3, "ConfigMap": 14, "Secret_<x>": 1},
		DirectoryAvailable:   true,
		UnresolvedPrincipals: 2,
		CatalogueVersion:     "2025.1",
		Semantics: &secureauditv1.AuthorizerSemantics{ServerVersion: "v1.34.1",
			Source: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY},
		ReasoningProvider: "none",
		Summary:           &secureauditv1.SeverityCounts{Critical: 1, High: 1, Medium: 1, Low: 1},
		Findings: []*secureauditv1.Finding{
			{
				Id:             "0a1b2c3d4e5f6071",
				RuleId:         "CIS-001",
				Title:          "cluster-admin bound to a group",
				Severity:       secureauditv1.Severity_SEVERITY_CRITICAL,
				SeverityReason: "base CRITICAL; cluster scope; a group reaches many people",
				Subject: &secureauditv1.SubjectRef{
					Kind:        secureauditv1.SubjectKind_SUBJECT_KIND_GROUP,
					Name:        "3f2a9c1e-55d4-4a8b-9e21-0c6f7d8b9a10",
					DisplayName: "Platform *Admins*",
				},
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "platform-admins"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:   cluster,
				MatchedRules: []*secureauditv1.PolicyRule{
					{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}},
					{Verbs: []string{"*"}, NonResourceUrls: []string{"*"}},
				},
				Controls:    []string{"CIS-5.1.1", "SOC2-CC6.1", "SOC2-CC6.3"},
				Remediation: "kubectl delete clusterrolebinding platform-admins\nkubectl create rolebinding platform-admins --clusterrole=admin --group=3f2a9c1e-55d4-4a8b-9e21-0c6f7d8b9a10 -n platform",
				Description: "cluster-admin grants every verb on every resource in every namespace.",
			},
			{
				Id:             "1b2c3d4e5f607182",
				RuleId:         "CIS-004",
				Title:          "Pod creation and exec in a namespace",
				Severity:       secureauditv1.Severity_SEVERITY_HIGH,
				SeverityReason: "base HIGH; pod create plus secrets read",
				Subject: &secureauditv1.SubjectRef{
					Kind:      secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT,
					Name:      hostile,
					Namespace: "ci",
				},
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "deployer_`x`", Namespace: "ci"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "deployer", Namespace: "ci"},
				Scope:   ns("ci"),
				MatchedRules: []*secureauditv1.PolicyRule{
					{Verbs: []string{"create", "get"}, ApiGroups: []string{""}, Resources: []string{"pods", "pods/exec"}},
					{Verbs: []string{"get"}, ApiGroups: []string{"", "apps"}, Resources: []string{"secrets"}, ResourceNames: []string{"ci-token"}},
				},
				Controls:    []string{"CIS-5.1.4", "SOC2-CC6.3"},
				Remediation: "Remove pods/exec from the Role:\nkubectl edit role deployer -n ci # name ```evil```",
				Description: "A subject that creates pods can mount any ServiceAccount of the namespace.\nIt can read " + hostile + ".",
			},
			{
				Id:             "2c3d4e5f60718293",
				RuleId:         "RBAC-010",
				Title:          "Binding references a missing role",
				Severity:       secureauditv1.Severity_SEVERITY_MEDIUM,
				SeverityReason: "base MEDIUM",
				Subject: &secureauditv1.SubjectRef{
					Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER,
					Name: "guest_partner#EXT#@contoso.onmicrosoft.com",
				},
				Binding:     &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "legacy-ops", Namespace: "payments"},
				Role:        &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "ops", Namespace: "payments", Missing: true},
				Scope:       ns("payments"),
				Controls:    []string{"SOC2-CC6.2"},
				Remediation: "Delete the binding or create the role it expects.",
			},
			{
				Id:             "3d4e5f6071829304",
				RuleId:         "CIS-002",
				Title:          "Secrets readable by name",
				Severity:       secureauditv1.Severity_SEVERITY_LOW,
				SeverityReason: "base HIGH; reduced by resourceNames",
				Subject:        &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "reader", Namespace: "team-a"},
				Binding:        &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "reader", Namespace: "team-a"},
				Role:           &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "secret-reader"},
				Scope:          ns("team-a"),
				MatchedRules: []*secureauditv1.PolicyRule{
					{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"app-config", "tls"}},
				},
				Controls:    []string{"CIS-5.1.2", "SOC2-CC6.3"},
				Remediation: "kubectl create role secret-reader -n team-a --verb=get --resource=secrets --resource-name=app-config",
			},
		},
		InfrastructureFindings: []*secureauditv1.Finding{
			{
				Id:             "4e5f60718293a4b5",
				RuleId:         "CIS-001",
				Title:          "cluster-admin bound to a group",
				Severity:       secureauditv1.Severity_SEVERITY_CRITICAL,
				SeverityReason: "base CRITICAL; cluster scope",
				Subject:        &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "system:masters"},
				Binding:        &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "cluster-admin"},
				Role:           &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"},
				Scope:          cluster,
				Controls:       []string{"CIS-5.1.1"},
				Remediation:    "Managed by the platform.",
				Infrastructure: true,
			},
			{
				Id:             "5f60718293a4b5c6",
				RuleId:         "RBAC-010",
				Title:          "Binding references a missing role",
				Severity:       secureauditv1.Severity_SEVERITY_INFO,
				SeverityReason: "base MEDIUM; platform-managed",
				Subject:        &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "aks:" + hostile},
				Binding:        &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "aks-service"},
				Role:           &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "aks-service", Missing: true},
				Scope:          cluster,
				Remediation:    "Managed by the platform.",
				Infrastructure: true,
			},
		},
	})
}

func emptyReport() *secureauditv1.Report {
	return asSent(&secureauditv1.Report{
		AuditId:     "00000000-0000-4000-8000-000000000000",
		Cluster:     "kind-empty",
		GeneratedAt: timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)),
		Source:      secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:      "https://127.0.0.1:6443",
		Counts:      &secureauditv1.ObjectCounts{Namespaces: 1},
		Summary:     &secureauditv1.SeverityCounts{},
		Semantics: &secureauditv1.AuthorizerSemantics{ServerVersion: "v1.37.0", StreamingNeedsCreate: true,
			Source: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DEFAULT},
	})
}

func TestGolden(t *testing.T) {
	tests := []struct {
		file   string
		report *secureauditv1.Report
		format secureauditv1.ReportFormat
	}{
		{"report.md", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN},
		{"report.json", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_JSON},
		{"report.html", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_HTML},
		{"empty.md", emptyReport(), secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN},
		{"empty.html", emptyReport(), secureauditv1.ReportFormat_REPORT_FORMAT_HTML},
		{"report.sarif", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_SARIF},
		{"report.oscal.json", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL},
		{"report.csv", sampleReport(), secureauditv1.ReportFormat_REPORT_FORMAT_CSV},
		{"empty.json", emptyReport(), secureauditv1.ReportFormat_REPORT_FORMAT_JSON},
		{"paths/report.md", pathsReport(t), secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN},
		{"paths/report.html", pathsReport(t), secureauditv1.ReportFormat_REPORT_FORMAT_HTML},
		{"paths/report.sarif", pathsReport(t), secureauditv1.ReportFormat_REPORT_FORMAT_SARIF},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := Document(tt.format, tt.report)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from the golden file (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, format := range []secureauditv1.ReportFormat{
		secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_JSON,
		secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF,
		secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, secureauditv1.ReportFormat_REPORT_FORMAT_CSV,
	} {
		t.Run(format.String(), func(t *testing.T) {
			first, err := Document(format, sampleReport())
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				// A fresh message each time: map iteration and protojson's
				// whitespace must not leak into the output.
				got, err := Document(format, proto.Clone(sampleReport()).(*secureauditv1.Report))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(first, got) {
					t.Fatalf("output differs between runs:\n%s", cmp.Diff(string(first), string(got)))
				}
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for name, report := range map[string]*secureauditv1.Report{"sample": sampleReport(), "empty": emptyReport()} {
		t.Run(name, func(t *testing.T) {
			data, err := JSON(report)
			if err != nil {
				t.Fatal(err)
			}
			got := &secureauditv1.Report{}
			if err := protojson.Unmarshal(data, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(report, got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip changed the report (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONShape(t *testing.T) {
	data, err := JSON(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("}\n")) || !bytes.HasPrefix(data, []byte("{\n  \"")) {
		t.Errorf("report.json is not indented with two spaces and ended by a newline:\n%.80s", data)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	findings, ok := doc["findings"].([]any)
	if !ok || len(findings) != 4 {
		t.Fatalf("top-level findings = %T with %d items, want an array of 4", doc["findings"], len(findings))
	}
	if infra, ok := doc["infrastructureFindings"].([]any); !ok || len(infra) != 2 {
		t.Errorf("top-level infrastructureFindings = %v, want an array of 2", doc["infrastructureFindings"])
	}
	first := findings[0].(map[string]any)
	for _, key := range []string{"id", "ruleId", "severity", "severityReason", "subject", "binding", "role", "scope", "matchedRules", "controls", "remediation", "description"} {
		if _, ok := first[key]; !ok {
			t.Errorf("first finding has no key %q; keys: %v", key, keys(first))
		}
	}
	for _, key := range []string{"auditId", "generatedAt", "directoryAvailable", "unresolvedPrincipals", "reasoningProvider", "summary", "counts"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("report has no key %q; keys: %v", key, keys(doc))
		}
	}
	walkKeys(doc, func(k string) {
		if strings.Contains(k, "_") {
			t.Errorf("key %q is not lowerCamelCase", k)
		}
	})
}

// walkKeys calls fn with every object key in v, except the keys of the
// skipped map, whose keys are Kubernetes kinds rather than field names.
func walkKeys(v any, fn func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			fn(k)
			if k != "skipped" {
				walkKeys(x, fn)
			}
		}
	case []any:
		for _, x := range v {
			walkKeys(x, fn)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestMarkdownEscapesHostileNames(t *testing.T) {
	doc := string(Markdown(sampleReport()))
	for _, bad := range []string{hostile, "<img>", "evil|name", "Platform *Admins*"} {
		if strings.Contains(doc, bad) {
			t.Errorf("Markdown contains unescaped %q", bad)
		}
	}
	for _, good := range []string{`evil\|name\](http://x)\<img\>`, `Platform \*Admins\*`, "deployer\\_\\`x\\`", "kubectl edit role deployer -n ci # name \\`\\`\\`evil\\`\\`\\`"} {
		if !strings.Contains(doc, good) {
			t.Errorf("Markdown lacks escaped %q", good)
		}
	}
	// The report's own links point at its anchors; any other link was injected.
	own := regexp.MustCompile(`\]\(#((finding|review|choke)-[0-9]+|choke-points|escalation-paths)\)`)
	if i := strings.Index(own.ReplaceAllString(strings.ReplaceAll(doc, `\]`, ""), ""), "]("); i >= 0 {
		t.Errorf("Markdown contains an unescaped link near %q", doc[max(0, i-20):i+10])
	}
	// Every row of a table has as many cells as its header row.
	var want int
	for i, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = 0
			continue
		}
		cells := unescapedPipes(line)
		if want == 0 {
			want = cells
		}
		if cells != want {
			t.Errorf("line %d has %d cell separators, its table %d: %s", i+1, cells, want, line)
		}
	}
}

func unescapedPipes(line string) int {
	n := 0
	escaped := false
	for _, c := range line {
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped = true
		case c == '|':
			n++
		}
	}
	return n
}

func TestHTMLEscapesHostileNames(t *testing.T) {
	doc, err := HTML(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<img>", "<b>Guest</b>", "http://x)<"} {
		if strings.Contains(string(doc), bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	for _, good := range []string{"evil|name](http://x)&lt;img&gt;", "Partner &lt;b&gt;Guest&lt;/b&gt;", "Content-Security-Policy"} {
		if !strings.Contains(string(doc), good) {
			t.Errorf("HTML lacks %q", good)
		}
	}
	for _, external := range []string{"src=\"http", "href=\"http", "@import", "url(http"} {
		if strings.Contains(string(doc), external) {
			t.Errorf("HTML references an external resource: %q", external)
		}
	}
}

func TestAction(t *testing.T) {
	const (
		rbac     = secureauditv1.RuleFamily_RULE_FAMILY_RBAC
		identity = secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
	)
	tests := []struct {
		severity secureauditv1.Severity
		rule     string
		family   secureauditv1.RuleFamily
		want     Action
	}{
		{secureauditv1.Severity_SEVERITY_CRITICAL, "RBAC-001", rbac, ActionRevoke},
		{secureauditv1.Severity_SEVERITY_HIGH, "RBAC-003", rbac, ActionInvestigate},
		{secureauditv1.Severity_SEVERITY_HIGH, "ENTRA-002", identity, ActionRevoke},
		{secureauditv1.Severity_SEVERITY_MEDIUM, "ENTRA-002", identity, ActionReview},
		{secureauditv1.Severity_SEVERITY_LOW, "RBAC-010", rbac, ActionReview},
		{secureauditv1.Severity_SEVERITY_INFO, "RBAC-010", rbac, ActionReview},
		// The family decides, not the rule ID: an identity rule of any
		// name is revoked, and a rule named like one but of another family
		// is not.
		{secureauditv1.Severity_SEVERITY_HIGH, "AKS-001", identity, ActionRevoke},
		{secureauditv1.Severity_SEVERITY_HIGH, "ENTRA-002", rbac, ActionInvestigate},
		// A finding stored before findings carried a family is judged as
		// a permission.
		{secureauditv1.Severity_SEVERITY_HIGH, "ENTRA-002", secureauditv1.RuleFamily_RULE_FAMILY_UNSPECIFIED, ActionInvestigate},
	}
	for _, tt := range tests {
		t.Run(tt.severity.String()+"/"+tt.rule+"/"+tt.family.String(), func(t *testing.T) {
			if got := actionFor(&secureauditv1.Finding{Severity: tt.severity, RuleId: tt.rule, Family: tt.family}); got != tt.want {
				t.Errorf("actionFor = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMd(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain-name", "plain-name"},
		{"a|b", `a\|b`},
		{"*bold* _it_", `\*bold\* \_it\_`},
		{"`code`", "\\`code\\`"},
		{"<script>", `\<script\>`},
		{"[x](http://y)", `\[x\](http://y)`},
		{"line\nbreak\r\nand\rmore", "line break and more"},
		{`back\|slash`, `back\\\|slash`},
		{"&lt;", `\&lt;`},
		{"~~gone~~", `\~\~gone\~\~`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := md(tt.in); got != tt.want {
				t.Errorf("md(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCodeFence(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kubectl get pods", "```"},
		{"a ``` b", "````"},
		{"`````", "``````"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := codeFence(tt.in); got != tt.want {
				t.Errorf("codeFence(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDocumentUnsupported(t *testing.T) {
	if _, err := Document(secureauditv1.ReportFormat_REPORT_FORMAT_UNSPECIFIED, sampleReport()); !errors.Is(err, ErrUnsupported) {
		t.Error("Document(UNSPECIFIED) succeeded, want ErrUnsupported")
	}
	if Supported(secureauditv1.ReportFormat_REPORT_FORMAT_UNSPECIFIED) {
		t.Error("Supported(UNSPECIFIED) = true")
	}
}
