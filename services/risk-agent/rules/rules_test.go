package rules_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// want is one expected finding of a fixture.
type want struct {
	RuleID         string `json:"ruleId"`
	Severity       string `json:"severity"`
	SubjectKind    string `json:"subjectKind"`
	Subject        string `json:"subject"`
	SubjectNS      string `json:"subjectNamespace,omitempty"`
	Binding        string `json:"binding"`
	BindingNS      string `json:"bindingNamespace,omitempty"`
	Infrastructure bool   `json:"infrastructure,omitempty"`
	// Role is set for findings about a role rather than a subject.
	Role string `json:"role,omitempty"`
}

func summarize(f *secureauditv1.Finding) want {
	return want{
		RuleID:         f.GetRuleId(),
		Severity:       strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"),
		SubjectKind:    strings.TrimPrefix(f.GetSubject().GetKind().String(), "SUBJECT_KIND_"),
		Subject:        f.GetSubject().GetName(),
		SubjectNS:      f.GetSubject().GetNamespace(),
		Binding:        f.GetBinding().GetName(),
		BindingNS:      f.GetBinding().GetNamespace(),
		Infrastructure: f.GetInfrastructure(),
		Role:           roleName(f),
	}
}

func roleName(f *secureauditv1.Finding) string {
	if f.GetSubject() != nil {
		return ""
	}
	if ns := f.GetRole().GetNamespace(); ns != "" {
		return ns + "/" + f.GetRole().GetName()
	}
	return f.GetRole().GetName()
}

// loadFixture reads dir/snapshot.json (a SnapshotChunk) and, when present,
// dir/directory.json (a DirectoryChunk).
func loadFixture(t *testing.T, dir string) (*secureauditv1.SnapshotChunk, *secureauditv1.DirectoryChunk) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(data, chunk); err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	var d *secureauditv1.DirectoryChunk
	if data, err := os.ReadFile(filepath.Join(dir, "directory.json")); err == nil {
		d = &secureauditv1.DirectoryChunk{}
		if err := protojson.Unmarshal(data, d); err != nil {
			t.Fatalf("parse %s directory: %v", dir, err)
		}
	}
	return chunk, d
}

func build(chunk *secureauditv1.SnapshotChunk, d *secureauditv1.DirectoryChunk) *snapshot.Snapshot {
	var dirs []*secureauditv1.DirectoryChunk
	if d != nil {
		dirs = append(dirs, d)
	}
	return snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, dirs)
}

// TestFixtures asserts, for every rule, the exact set of that rule's
// findings in its fixture directory: positives and near misses.
func TestFixtures(t *testing.T) {
	for _, r := range rules.Catalogue() {
		t.Run(r.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", r.ID)
			chunk, d := loadFixture(t, dir)
			var got []want
			for _, f := range rules.Evaluate(build(chunk, d)) {
				if f.GetRuleId() == r.ID {
					got = append(got, summarize(f))
				}
			}
			path := filepath.Join(dir, "want.json")
			if *update {
				data, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var wantList []want
			if err := json.Unmarshal(data, &wantList); err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			if len(wantList) == 0 {
				t.Fatalf("%s lists no findings; every fixture needs positives", path)
			}
			if diff := cmp.Diff(wantList, got); diff != "" {
				t.Errorf("findings of %s (-want +got):\n%s", r.ID, diff)
			}
		})
	}
}

// TestFindingsValid checks every finding of every fixture against the
// contract: fields set, IDs well-formed and unique, controls from the rule.
func TestFindingsValid(t *testing.T) {
	for _, r := range rules.Catalogue() {
		chunk, d := loadFixture(t, filepath.Join("testdata", "rules", r.ID))
		seen := map[string]bool{}
		for _, f := range rules.Evaluate(build(chunk, d)) {
			if len(f.GetId()) != 16 || strings.Trim(f.GetId(), "0123456789abcdef") != "" {
				t.Errorf("%s: bad id %q", r.ID, f.GetId())
			}
			if seen[f.GetId()] {
				t.Errorf("%s: duplicate id %s", r.ID, f.GetId())
			}
			seen[f.GetId()] = true
			if err := registry.Check(f); err != nil {
				t.Errorf("%s: %v", r.ID, err)
			}
			if f.GetTitle() == "" || f.GetSeverityReason() == "" || f.GetRemediation() == "" || f.GetScope() == nil || len(f.GetControls()) == 0 {
				t.Errorf("%s: incomplete finding %v", r.ID, f)
			}
			if !strings.Contains(f.GetRemediation(), "kubectl ") {
				t.Errorf("%s: remediation without a command: %q", r.ID, f.GetRemediation())
			}
		}
	}
}

func TestDisplayNames(t *testing.T) {
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", "RBAC-001"))
	got := map[string]string{}
	for _, f := range rules.Evaluate(build(chunk, d)) {
		if f.GetRuleId() == rules.ClusterAdmin {
			got[f.GetSubject().GetName()] = f.GetSubject().GetDisplayName()
		}
	}
	want := map[string]string{
		"alice@example.com":                    "Alice Admin", // UPN, case-insensitive
		"11111111-1111-4111-8111-111111111111": "Ops Admins",  // group by object id
		"bob":                                  "",
		"carol":                                "",
		"erin":                                 "",
		"deployer":                             "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("display names (-want +got):\n%s", diff)
	}
}

func TestSeverityReasonsAndRemediation(t *testing.T) {
	tests := []struct {
		fixture, rule, subject string
		reason, remediation    string
	}{
		{"RBAC-003", rules.SecretsRead, "s1", "base HIGH (reads secrets: get secrets, list secrets); cluster-wide: +1 -> CRITICAL", "kubectl edit clusterrole secret-reader"},
		{"RBAC-003", rules.SecretsRead, "s2", "base HIGH (reads secrets: get secrets); restricted by resourceNames: -1 -> MEDIUM; only named Secrets: at most LOW -> LOW", "kubectl -n team-a edit role one-secret"},
		// An aggregated role: the fix edits the ClusterRole contributing the rule.
		{"RBAC-003", rules.SecretsRead, "s4", "base HIGH (reads secrets: watch secrets); cluster-wide: +1 -> CRITICAL",
			"kubectl edit clusterrole secret-piece and drop get, list and watch on secrets (ClusterRole agg-reader only aggregates the rules: the aggregation controller overwrites edits of it)"},
		{"RBAC-003", rules.SecretsRead, "team-a-devs", "base HIGH (reads secrets: watch secrets); group subject: +1 -> CRITICAL; namespace scope: at most HIGH -> HIGH", "kubectl -n team-a edit role secrets"},
		{"RBAC-001", rules.ClusterAdmin, "bob", "base HIGH (bound to cluster-admin, namespace admin)", "kubectl -n team-a delete rolebinding ns-admin"},
		{"RBAC-001", rules.ClusterAdmin, "alice@example.com", "base CRITICAL (bound to cluster-admin)", "kubectl delete clusterrolebinding root"},
		{"RBAC-005", rules.PodCreate, "p3", "base MEDIUM (creates pods); chain: pod create plus secrets read (via RoleBinding team-a/pc2): at least HIGH -> HIGH", "kubectl -n team-a edit role pod-and-secret"},
		{"RBAC-009", rules.EscalationVerbs, "b5", "base HIGH (escalation verbs: impersonate users, impersonate groups); cluster-wide: +1 -> CRITICAL", "kubectl edit clusterrole impersonator"},
		{"RBAC-010", rules.DanglingBinding, "d2", "base LOW (ClusterRole not-there does not exist)", "kubectl delete clusterrolebinding gone-c"},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.subject, func(t *testing.T) {
			chunk, d := loadFixture(t, filepath.Join("testdata", "rules", tt.fixture))
			fs := rules.Evaluate(build(chunk, d))
			i := slices.IndexFunc(fs, func(f *secureauditv1.Finding) bool {
				return f.GetRuleId() == tt.rule && f.GetSubject().GetName() == tt.subject
			})
			if i < 0 {
				t.Fatalf("no %s finding for %s", tt.rule, tt.subject)
			}
			if got := fs[i].GetSeverityReason(); got != tt.reason {
				t.Errorf("severity_reason = %q, want %q", got, tt.reason)
			}
			if got := fs[i].GetRemediation(); !strings.Contains(got, tt.remediation) {
				t.Errorf("remediation = %q, want it to contain %q", got, tt.remediation)
			}
		})
	}
}

// upstreamPolicy reads the bootstrap policy the package embeds: the
// ClusterRoles a fresh Kubernetes API server creates, captured by test/kube.
func upstreamPolicy(t *testing.T) *secureauditv1.SnapshotChunk {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("upstream", "bootstrap-clusterroles.json"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(data, chunk); err != nil {
		t.Fatalf("parse the bootstrap policy: %v", err)
	}
	if len(chunk.GetClusterRoles()) < 50 {
		t.Fatalf("the bootstrap policy holds %d ClusterRoles, want the whole policy", len(chunk.GetClusterRoles()))
	}
	return chunk
}

// TestUpstreamPolicyNoFindings is the false-positive guard of RBAC-035 and
// RBAC-036: an unchanged copy of the whole upstream bootstrap policy, as the
// API server creates it (aggregated roles empty, as in manifests and in
// clusters without kube-controller-manager) and with the aggregated roles
// filled in as the clusterrole-aggregation controller does, yields neither.
func TestUpstreamPolicyNoFindings(t *testing.T) {
	for _, tt := range []struct {
		filled  bool
		version string // before 1.35 get on pods/exec counts, in upstream as in the snapshot
	}{{false, ""}, {true, ""}, {false, "v1.34.0"}, {true, "v1.34.0"}} {
		filled := tt.filled
		t.Run(fmt.Sprintf("filled=%v,version=%s", filled, tt.version), func(t *testing.T) {
			chunk := upstreamPolicy(t)
			chunk.Header.ServerVersion = tt.version
			if filled {
				s := build(chunk, nil)
				for _, cr := range chunk.GetClusterRoles() {
					if len(cr.GetAggregationSelectors()) == 0 {
						continue
					}
					eff, _ := s.EffectiveClusterRoleRules(cr.GetMeta().GetName())
					cr.Rules = nil
					for _, r := range eff {
						cr.Rules = append(cr.Rules, proto.CloneOf(r)) // the controller writes copies
					}
				}
			}
			for _, f := range rules.Evaluate(build(chunk, nil)) {
				if id := f.GetRuleId(); id == rules.BuiltinWidened || id == rules.AggregatesIntoBuiltin {
					t.Errorf("%s on an unchanged upstream policy: %s: %s", id, roleName(f), f.GetDescription())
				}
			}
		})
	}
}

// TestEveryBootstrapRoleJudged widens each bootstrap ClusterRole in turn
// with a '*' rule and expects RBAC-035 on it, or, for the
// system:aggregate-to-* roles, on the roles that aggregate it; never on
// cluster-admin, which upstream already grants everything, nor on the
// aggregated admin, edit and view, whose own rules the controller replaces.
func TestEveryBootstrapRoleJudged(t *testing.T) {
	for _, cr := range upstreamPolicy(t).GetClusterRoles() {
		name := cr.GetMeta().GetName()
		t.Run(name, func(t *testing.T) {
			chunk := upstreamPolicy(t)
			star := &secureauditv1.PolicyRule{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}}
			for _, x := range chunk.GetClusterRoles() {
				if x.GetMeta().GetName() == name {
					x.Rules = append(x.Rules, star)
				}
			}
			s := build(chunk, nil)
			var want []string
			for _, x := range s.ClusterRoles() {
				n := x.GetMeta().GetName()
				eff, _ := s.EffectiveClusterRoleRules(n)
				if n != "cluster-admin" && !strings.HasPrefix(n, "system:aggregate-to-") && slices.Contains(eff, star) {
					want = append(want, n)
				}
			}
			// A rule written into an aggregated role (admin, edit, view)
			// is replaced by the controller: it widens nothing.
			if name != "cluster-admin" && len(cr.GetAggregationSelectors()) == 0 && len(want) == 0 {
				t.Fatalf("no role carries the widened %s", name)
			}
			var got []string
			for _, f := range rules.Evaluate(s) {
				if f.GetRuleId() == rules.BuiltinWidened {
					got = append(got, f.GetRole().GetName())
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RBAC-035 roles with %s widened (-want +got):\n%s", name, diff)
			}
		})
	}
}

// TestBuiltinWidenedText checks what RBAC-035 says and asks for: the extra
// permissions, who contributes them, and a command per contributor (an
// unlabel for a role aggregated in, an edit for a bootstrap role, whose
// upstream labels stay).
func TestBuiltinWidenedText(t *testing.T) {
	tests := []struct {
		role, detail, remediation string
	}{
		// sneaky's Secret read is RBAC-036's finding: RBAC-035 names it
		// and leaves its fix (the unlabel) to that finding.
		{"view", "Beyond upstream: create pods/exec. Contributed through aggregation by ClusterRole system:aggregate-to-view. Also beyond upstream, and reported by RBAC-036 on the ClusterRoles aggregated into it: get secrets, list secrets.",
			"Command: kubectl edit clusterrole system:aggregate-to-view and remove the rules granting create pods/exec"},
		{"system:controller:replicaset-controller", "Beyond upstream: get secrets, list secrets.",
			"kubectl edit clusterrole system:controller:replicaset-controller and remove the rules granting get secrets, list secrets"},
		{"system:certificates.k8s.io:kubelet-serving-approver", "Beyond upstream: approve signers (any name).", "approve signers (any name)"},
		{"system:certificates.k8s.io:legacy-unknown-approver", "Beyond upstream: approve signers (named kubernetes.io/kube-apiserver-client).", "kubectl edit clusterrole"},
	}
	chunk, d := loadFixture(t, filepath.Join("testdata", "rules", rules.BuiltinWidened))
	fs := rules.Evaluate(build(chunk, d))
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			i := slices.IndexFunc(fs, func(f *secureauditv1.Finding) bool {
				return f.GetRuleId() == rules.BuiltinWidened && f.GetRole().GetName() == tt.role
			})
			if i < 0 {
				t.Fatalf("no RBAC-035 finding for %s", tt.role)
			}
			if got := fs[i].GetDescription(); !strings.HasSuffix(got, " "+tt.detail) {
				t.Errorf("description = %q, want it to end with %q", got, tt.detail)
			}
			if got := fs[i].GetRemediation(); !strings.Contains(got, tt.remediation) {
				t.Errorf("remediation = %q, want it to contain %q", got, tt.remediation)
			}
		})
	}
}

// In a live cluster the clusterrole-aggregation controller copies the
// aggregated roles' rules into admin, edit and view: RBAC-035 still names
// the ClusterRole a widening rule came from. A rule of acme-edit-extras is
// RBAC-036's finding, so RBAC-035 leaves it out; a rule added to the
// bootstrap system:aggregate-to-edit is RBAC-035's, and the fix edits that
// role rather than one the controller rewrites.
func TestBuiltinWidenedLiveAggregation(t *testing.T) {
	chunk := upstreamPolicy(t)
	extraRule := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"nodes/proxy"}}
	chunk.ClusterRoles = append(chunk.ClusterRoles, &secureauditv1.ClusterRole{
		Meta:  &secureauditv1.ObjectMeta{Name: "acme-edit-extras", Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
		Rules: []*secureauditv1.PolicyRule{extraRule},
	})
	builtinExtra := &secureauditv1.PolicyRule{Verbs: []string{"create"}, ApiGroups: []string{""}, Resources: []string{"nodes/proxy"}}
	for _, cr := range chunk.GetClusterRoles() {
		if cr.GetMeta().GetName() == "system:aggregate-to-edit" {
			cr.Rules = append(cr.Rules, builtinExtra)
		}
	}
	s := build(chunk, nil)
	for _, cr := range chunk.GetClusterRoles() {
		if len(cr.GetAggregationSelectors()) == 0 {
			continue
		}
		eff, _ := s.EffectiveClusterRoleRules(cr.GetMeta().GetName())
		cr.Rules = nil
		for _, r := range eff {
			cr.Rules = append(cr.Rules, proto.CloneOf(r)) // the controller writes copies
		}
	}
	got := map[string]*secureauditv1.Finding{}
	for _, f := range rules.Evaluate(build(chunk, nil)) {
		if f.GetRuleId() == rules.BuiltinWidened || f.GetRuleId() == rules.AggregatesIntoBuiltin {
			got[f.GetRuleId()+" "+roleName(f)] = f
		}
	}
	if got["RBAC-036 acme-edit-extras"] == nil {
		t.Error("no RBAC-036 on acme-edit-extras")
	}
	for _, role := range []string{"edit", "admin"} {
		f := got["RBAC-035 "+role]
		if f == nil {
			t.Errorf("no RBAC-035 on %s, which aggregates system:aggregate-to-edit", role)
			continue
		}
		for _, want := range []string{"Beyond upstream: create nodes/proxy.", "Contributed through aggregation by ClusterRole system:aggregate-to-edit.",
			"reported by RBAC-036 on the ClusterRoles aggregated into it: get nodes/proxy."} {
			if !strings.Contains(f.GetDescription(), want) {
				t.Errorf("%s: description does not say %q: %s", role, want, f.GetDescription())
			}
		}
		if strings.Contains(f.GetDescription(), "acme-edit-extras") {
			t.Errorf("%s: the contributor RBAC-036 reports is named as RBAC-035's: %s", role, f.GetDescription())
		}
		if !strings.Contains(f.GetRemediation(), "kubectl edit clusterrole system:aggregate-to-edit") || strings.Contains(f.GetRemediation(), "kubectl edit clusterrole "+role+" ") ||
			strings.Contains(f.GetRemediation(), "acme-edit-extras") {
			t.Errorf("%s: remediation %q, want system:aggregate-to-edit edited, %s left to the controller and acme-edit-extras to RBAC-036", role, f.GetRemediation(), role)
		}
	}
}

// A built-in role widened only by roles RBAC-036 reports has no RBAC-035
// finding of its own: each contributor's finding says what it adds.
func TestBuiltinWidenedExplained(t *testing.T) {
	chunk := upstreamPolicy(t)
	chunk.ClusterRoles = append(chunk.ClusterRoles, &secureauditv1.ClusterRole{
		Meta:  &secureauditv1.ObjectMeta{Name: "acme-edit-extras", Labels: map[string]string{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
		Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"nodes/proxy"}}},
	})
	var got []string
	for _, f := range rules.Evaluate(build(chunk, nil)) {
		if f.GetRuleId() == rules.BuiltinWidened || f.GetRuleId() == rules.AggregatesIntoBuiltin {
			got = append(got, f.GetRuleId()+" "+roleName(f))
		}
	}
	if diff := cmp.Diff([]string{"RBAC-036 acme-edit-extras"}, got); diff != "" {
		t.Errorf("findings on roles (-want +got):\n%s", diff)
	}
}

// A snapshot of manifests binds bootstrap roles it does not define: their
// rules are the captured upstream policy's, so a RoleBinding to edit is
// judged as edit; a missing role merely named system:... is missing.
func TestBindingsToUndefinedBootstrapRoles(t *testing.T) {
	chunk := &secureauditv1.SnapshotChunk{
		Header: &secureauditv1.SnapshotHeader{Cluster: "manifests"},
		RoleBindings: []*secureauditv1.RoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: "devs-edit", Namespace: "payments"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "edit"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "dev@example.com"}},
		}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Name: "looks-builtin"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "system:not-in-the-bootstrap-policy"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "ops@example.com"}},
		}},
	}
	byRule := map[string][]string{}
	for _, f := range rules.Evaluate(build(chunk, nil)) {
		byRule[f.GetRuleId()] = append(byRule[f.GetRuleId()], f.GetSubject().GetName())
	}
	// edit reads secrets and execs into pods in its namespace.
	for _, id := range []string{rules.SecretsRead, rules.PodExec} {
		if !slices.Contains(byRule[id], "dev@example.com") {
			t.Errorf("no %s for the user bound to edit (findings by rule: %v)", id, byRule)
		}
	}
	if !slices.Contains(byRule[rules.DanglingBinding], "ops@example.com") {
		t.Errorf("the binding to a missing system:... role is not reported dangling (findings by rule: %v)", byRule)
	}
}
