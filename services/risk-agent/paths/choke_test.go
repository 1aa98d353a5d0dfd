package paths_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
)

// TestChokePoints pins the choke points of the fixture: greedy set cover
// over the proven paths, the binding closing the most first; a subject with
// a second way in (frank reaches team-a/deployer and team-d/operator
// through nodes/proxy) is not closed by removing one of them; conditional
// paths (gina, nina) are in no group; removal costs name who loses what.
func TestChokePoints(t *testing.T) {
	s := load(t, filepath.Join("testdata", "rules", paths.RuleID))
	r := paths.Analyze(rules.Analyze(s))
	subject := map[string]string{}
	proven := 0
	for _, f := range r.Findings {
		subject[f.GetId()] = f.GetSubject().GetName()
		if !f.GetConditional() {
			proven++
		}
	}
	type point struct {
		Binding, Command string
		Total            uint32
		Closes, Grouped  []string
		Costs            map[string][]string
	}
	var got []point
	for _, c := range r.ChokePoints {
		p := point{Binding: rules.BindingText(c.GetBinding()), Command: c.GetCommand(), Total: c.GetTotalPaths(), Costs: map[string][]string{}}
		for _, id := range c.GetFindingIds() {
			p.Closes = append(p.Closes, subject[id])
		}
		for _, id := range c.GetGrouped() {
			p.Grouped = append(p.Grouped, subject[id])
		}
		for _, cost := range c.GetCosts() {
			p.Costs[cost.GetSubject().GetName()] = cost.GetCapabilities()
		}
		got = append(got, p)
	}
	admin := []string{"every verb on every resource"}
	want := []point{
		{"ClusterRoleBinding deployer-admin", "kubectl delete clusterrolebinding deployer-admin", 10,
			[]string{"alice", "builder", "bob", "hank", "olga"}, []string{"alice", "builder", "bob", "hank", "olga"},
			map[string][]string{"deployer": admin, "system:masters": admin}},
		{"ClusterRoleBinding binder", "kubectl delete clusterrolebinding binder", 10, []string{"carol"}, []string{"carol"},
			map[string][]string{"carol": {"bind clusterroles", "create clusterrolebindings"}}},
		{"ClusterRoleBinding csr", "kubectl delete clusterrolebinding csr", 10, []string{"erin"}, []string{"erin"},
			map[string][]string{"erin": {"update certificatesigningrequests/approval", "approve signers"}}},
		{"ClusterRoleBinding impersonator", "kubectl delete clusterrolebinding impersonator", 10, []string{"dave"}, []string{"dave"},
			map[string][]string{"dave": {"impersonate groups"}}},
		{"ClusterRoleBinding nodes-proxy", "kubectl delete clusterrolebinding nodes-proxy", 10, []string{"frank"}, []string{"frank"},
			map[string][]string{"frank": {"get nodes/proxy"}}},
		{"ClusterRoleBinding operator-admin", "kubectl delete clusterrolebinding operator-admin", 10, []string{"mia"}, []string{"mia"},
			map[string][]string{"operator": admin}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("choke points (-want +got):\n%s", diff)
	}
	if proven != 10 {
		t.Errorf("%d proven paths, want 10", proven)
	}
}
