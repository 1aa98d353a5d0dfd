// Package compliance_test checks that compliance status is derived from
// every rule hit: each rule fixture of the risk-agent runs through the
// deterministic assessment (assess.Detect) and the report-agent's OSCAL
// renderer, and every control a triggered rule maps to, directly or
// through a hit folded into a broader finding, must be reported not
// satisfied; a control is satisfied only when nothing maps to it.
package compliance_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/entry"
	"secureaudit.dev/services/report-agent/render"
	"secureaudit.dev/services/risk-agent/aks"
	"secureaudit.dev/services/risk-agent/assess"
	"secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// catalogue maps every rule ID to its controls, from the rule registry
// itself rather than from the findings.
func catalogue() map[string][]string {
	out := map[string][]string{}
	for _, r := range registry.All() {
		out[r.ID] = r.Controls
	}
	for _, r := range aks.Catalogue() {
		out[r.ID] = r.Controls
	}
	return out
}

// controlsFor returns the controls a rule ID maps to.
func controlsFor(t *testing.T, cat map[string][]string, id string) []string {
	t.Helper()
	c, ok := cat[id]
	if !ok {
		t.Fatalf("rule %s is not registered", id)
	}
	return c
}

// load reads a fixture directory: snapshot.json and, when present,
// directory.json.
func load(t *testing.T, dir string) (*snapshot.Snapshot, []*secureauditv1.DirectoryChunk) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(data, chunk); err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	var dirs []*secureauditv1.DirectoryChunk
	if data, err := os.ReadFile(filepath.Join(dir, "directory.json")); err == nil {
		d := &secureauditv1.DirectoryChunk{}
		if err := protojson.Unmarshal(data, d); err != nil {
			t.Fatalf("parse %s directory: %v", dir, err)
		}
		dirs = append(dirs, d)
	}
	return snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, dirs), dirs
}

// oscalStatus renders the findings as the report-agent does (platform-
// managed ones in the appendix) and returns each control's OSCAL state.
// With accepted, every main finding is an accepted risk instead (out of
// the main list, in accepted_risks), as an approved acceptance makes it.
func oscalStatus(t *testing.T, findings []*secureauditv1.Finding, accepted ...bool) map[string]string {
	t.Helper()
	report := &secureauditv1.Report{
		AuditId: "00000000-0000-4000-8000-000000000011", Cluster: "fixture",
		GeneratedAt: timestamppb.New(timestamppb.Now().AsTime().Truncate(1e9)),
		// The controls the risk-agent's assessment lists (AssessSummary.controls).
		Controls: registry.Controls(),
	}
	for _, f := range findings {
		switch {
		case f.GetInfrastructure():
			report.InfrastructureFindings = append(report.InfrastructureFindings, f)
		case len(accepted) > 0 && accepted[0]:
			report.AcceptedRisks = append(report.AcceptedRisks, &secureauditv1.AcceptedFinding{Finding: f, Status: secureauditv1.AcceptanceStatus_ACCEPTANCE_STATUS_ACCEPTED,
				Acceptance: &secureauditv1.Acceptance{Id: 1, RuleId: f.GetRuleId(), Reason: "accepted for the test", Ticket: "T-1", ExpiresAt: report.GetGeneratedAt()}})
		default:
			report.Findings = append(report.Findings, f)
		}
	}
	data, err := render.OSCAL(report)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AR struct {
			Results []struct {
				Findings []struct {
					Target struct {
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
	out := map[string]string{}
	for _, f := range doc.AR.Results[0].Findings {
		out[f.Target.TargetID] = f.Target.Status.State
	}
	return out
}

// hits returns every control mapped by a rule hit on a non-platform grant:
// the finding's own rule and the rules folded into it.
func hits(t *testing.T, cat map[string][]string, findings []*secureauditv1.Finding) (map[string][]string, []string) {
	t.Helper()
	violated := map[string][]string{} // control -> rule IDs
	var folded []string
	for _, f := range findings {
		if f.GetInfrastructure() {
			continue
		}
		ids := []string{f.GetRuleId()}
		for _, h := range f.GetFolded() {
			ids = append(ids, h.GetRuleId())
			folded = append(folded, h.GetRuleId())
		}
		for _, id := range ids {
			for _, c := range controlsFor(t, cat, id) {
				c = strings.ToLower(c)
				if !slices.Contains(violated[c], id) {
					violated[c] = append(violated[c], id)
				}
			}
		}
	}
	return violated, folded
}

func TestControlStatusFromEveryHit(t *testing.T) {
	cat := catalogue()
	dirs, err := filepath.Glob(filepath.Join("..", "..", "services", "risk-agent", "*", "testdata", "rules", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 50 {
		t.Fatalf("found %d rule fixtures, want every one (over 50)", len(dirs))
	}
	foldedSeen := 0
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			snap, dchunks := load(t, dir)
			findings := assess.Detect(snap, dchunks, identity.Config{}).Findings
			violated, folded := hits(t, cat, findings)
			foldedSeen += len(folded)
			status := oscalStatus(t, findings)
			// A risk accepted is not a control satisfied: with every
			// finding accepted, each control keeps its status.
			if acc := oscalStatus(t, findings, true); !maps.Equal(acc, status) {
				t.Errorf("with every finding an accepted risk, OSCAL control status changed:\n%v\nwant\n%v", acc, status)
			}
			var wrong []string
			for c, ids := range violated {
				if status[c] != "not-satisfied" {
					wrong = append(wrong, c+" is "+firstNonEmpty(status[c], "absent")+" but "+strings.Join(ids, ", ")+" hit it")
				}
			}
			for c, st := range status {
				if st == "satisfied" && len(violated[c]) > 0 || st == "not-satisfied" && len(violated[c]) == 0 {
					wrong = append(wrong, c+" is "+st+" with rule hits "+strings.Join(violated[c], ", "))
				}
			}
			sort.Strings(wrong)
			wrong = slices.Compact(wrong)
			if len(wrong) > 0 {
				t.Errorf("OSCAL status disagrees with the rule hits:\n%s", strings.Join(wrong, "\n"))
			}
		})
	}
	if foldedSeen == 0 {
		t.Errorf("no fixture has a folded rule hit: the test would not see folding lose a control")
	}
}

// TestWildcardRoleBreaksWildcardControl is the case: a bound Role
// of '*/*/*' is reported as RBAC-001, and CIS 5.1.3 (wildcards) must not be
// satisfied for it; without the folded hits it would be.
func TestWildcardRoleBreaksWildcardControl(t *testing.T) {
	chunk := &secureauditv1.SnapshotChunk{
		Header: &secureauditv1.SnapshotHeader{Cluster: "wildcard", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE},
		Roles: []*secureauditv1.Role{{
			Meta:  &secureauditv1.ObjectMeta{Namespace: "team-a", Name: "everything"},
			Rules: []*secureauditv1.PolicyRule{{ApiGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}},
		}},
		RoleBindings: []*secureauditv1.RoleBinding{{
			Meta:     &secureauditv1.ObjectMeta{Namespace: "team-a", Name: "everything"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "everything"},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "dev@example.com"}},
		}},
	}
	findings := assess.Detect(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil), nil, identity.Config{}).Findings
	var admin *secureauditv1.Finding
	for _, f := range findings {
		if f.GetRuleId() == rules.Wildcard {
			t.Errorf("RBAC-004 reported on its own next to RBAC-001: %v", f)
		}
		if f.GetRuleId() == rules.ClusterAdmin {
			admin = f
		}
	}
	if admin == nil || !slices.ContainsFunc(admin.GetFolded(), func(h *secureauditv1.FoldedHit) bool { return h.GetRuleId() == rules.Wildcard }) {
		t.Fatalf("RBAC-001 without RBAC-004 folded in: %v", admin)
	}
	if st := oscalStatus(t, findings)["cis-5.1.3"]; st != "not-satisfied" {
		t.Errorf("cis-5.1.3 is %q, want not-satisfied", st)
	}
	admin.Folded = nil
	if st := oscalStatus(t, findings)["cis-5.1.3"]; st != "satisfied" {
		t.Errorf("without the folded hits cis-5.1.3 is %q: the check above would not catch a lost fold", st)
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// pristine is the captured bootstrap policy alone (the risk-agent's
// upstream files): what a fresh API server creates.
func pristine(t *testing.T) *secureauditv1.SnapshotChunk {
	t.Helper()
	out := &secureauditv1.SnapshotChunk{}
	for _, name := range []string{"bootstrap-clusterroles.json", "bootstrap-bindings.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "services", "risk-agent", "rules", "upstream", name))
		if err != nil {
			t.Fatal(err)
		}
		c := &secureauditv1.SnapshotChunk{}
		if err := protojson.Unmarshal(data, c); err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		out.ClusterRoles = append(out.ClusterRoles, c.ClusterRoles...)
		out.ClusterRoleBindings = append(out.ClusterRoleBindings, c.ClusterRoleBindings...)
		out.Roles = append(out.Roles, c.Roles...)
		out.RoleBindings = append(out.RoleBindings, c.RoleBindings...)
	}
	out.Header = &secureauditv1.SnapshotHeader{Cluster: "pristine", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE}
	return out
}

// TestPlantedServiceAccount is the hand-made cluster: on a pristine
// cluster every control is satisfied (its powerful grants are the
// platform's own); a ServiceAccount planted in kube-system with CSR
// approval, nodes/proxy, webhook writes and token creation makes CIS 5.1.10
// to 5.1.13 not satisfied, through main findings.
func TestPlantedServiceAccount(t *testing.T) {
	c := pristine(t)
	findings := assess.Detect(snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil), nil, identity.Config{}).Findings
	if len(findings) == 0 {
		t.Fatal("no findings on the pristine cluster: its cluster-admin binding should be in the appendix")
	}
	for c, st := range oscalStatus(t, findings) {
		if st != "satisfied" {
			t.Errorf("pristine cluster: %s is %s", c, st)
		}
	}

	c.ClusterRoles = append(c.ClusterRoles, &secureauditv1.ClusterRole{
		Meta: &secureauditv1.ObjectMeta{Name: "system:node-helper"},
		Rules: []*secureauditv1.PolicyRule{
			{ApiGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
			{ApiGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, Verbs: []string{"approve"}},
			{ApiGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get", "create"}},
			{ApiGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, Verbs: []string{"create", "update"}},
			{ApiGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}},
		},
	})
	c.ClusterRoleBindings = append(c.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{
		Meta:     &secureauditv1.ObjectMeta{Name: "system:node-helper"},
		RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "system:node-helper"},
		Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "kube-system", Name: "node-helper"}},
	})
	findings = assess.Detect(snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil), nil, identity.Config{}).Findings
	status := oscalStatus(t, findings)
	for _, c := range []string{"cis-5.1.10", "cis-5.1.11", "cis-5.1.12", "cis-5.1.13"} {
		if status[c] != "not-satisfied" {
			t.Errorf("planted ServiceAccount: %s is %q, want not-satisfied", c, status[c])
		}
	}
}

// TestInformationalHitsCount: hits the report lists apart as informational
// (an installed component reading a named Secret of its own namespace, a
// ClusterRole adding only policy-report writes to admin) are no entry of
// the reviewer's list, yet the controls they map to are reported not
// satisfied: a control is satisfied only when nothing maps to it.
func TestInformationalHitsCount(t *testing.T) {
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal([]byte(`{
	  "header": {"cluster": "informational", "source": "SNAPSHOT_SOURCE_FILE", "collectedAt": "2026-01-01T00:00:00Z"},
	  "namespaces": [{"meta": {"name": "web"}}],
	  "serviceAccounts": [{"meta": {"name": "certs", "namespace": "web"}}],
	  "workloads": [{"meta": {"name": "certs", "namespace": "web"}, "kind": "Deployment", "serviceAccount": "certs"}],
	  "roles": [{"meta": {"name": "certs", "namespace": "web"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["certs-tls"]}]}],
	  "roleBindings": [{"meta": {"name": "certs", "namespace": "web"}, "roleRef": {"kind": "ROLE_KIND_ROLE", "name": "certs"},
	    "subjects": [{"kind": "SUBJECT_KIND_SERVICE_ACCOUNT", "name": "certs", "namespace": "web"}]}],
	  "clusterRoles": [{"meta": {"name": "reports-admin", "labels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}},
	    "rules": [{"verbs": ["create", "update", "delete"], "apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"]}]}]
	}`), chunk); err != nil {
		t.Fatal(err)
	}
	findings := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil))
	var got []string
	for _, f := range findings {
		got = append(got, f.GetRuleId()+" "+strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"))
	}
	sort.Strings(got)
	if want := []string{"RBAC-003 INFO", "RBAC-036 INFO"}; !slices.Equal(got, want) {
		t.Fatalf("rule hits %v, want %v", got, want)
	}
	rules.Annotate(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil), findings)
	main, informational := entry.Split(entry.Group(findings))
	if len(main) != 0 || len(informational) != 2 {
		t.Errorf("%d entries and %d informational, want none and 2", len(main), len(informational))
	}
	status := oscalStatus(t, findings)
	for _, c := range []string{"cis-5.1.2", "cis-5.1.1", "soc2-cc6.1", "soc2-cc6.3"} {
		if status[c] != "not-satisfied" {
			t.Errorf("%s is %q with only informational hits mapping to it, want not-satisfied", c, status[c])
		}
	}
}
