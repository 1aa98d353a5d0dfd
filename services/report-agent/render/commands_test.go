package render

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestShellWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
		bad  bool
	}{
		{"kubectl -n ci edit role deployer", []string{"kubectl", "-n", "ci", "edit", "role", "deployer"}, false},
		{`kubectl patch sa x -p '{"automountServiceAccountToken":false}'`, []string{"kubectl", "patch", "sa", "x", "-p", `{"automountServiceAccountToken":false}`}, false},
		{`kubectl edit role 'it'\''s'`, []string{"kubectl", "edit", "role", "it's"}, false},
		{`az ad group member remove --group "a b" --member-id x\ y`, []string{"az", "ad", "group", "member", "remove", "--group", "a b", "--member-id", "x y"}, false},
		{"kubectl get pods | grep x", nil, true},
		{"kubectl edit role a; rm -rf /", nil, true},
		{"kubectl edit role 'open", nil, true},
		{`kubectl get "$(id)"`, nil, true},
		{"kubectl edit role deployer # comment", nil, true},
	}
	for _, tt := range tests {
		got, err := ShellWords(tt.line)
		if (err != nil) != tt.bad {
			t.Errorf("ShellWords(%q) error %v, want error %v", tt.line, err, tt.bad)
		}
		if diff := cmp.Diff(tt.want, got); !tt.bad && diff != "" {
			t.Errorf("ShellWords(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestNewFix(t *testing.T) {
	tests := []struct {
		rem  string
		want fixView
	}{
		{"Break the path at its first step.\nkubectl -n ci edit role pods\nkubectl -n ci edit rolebinding deployer",
			fixView{Prose: []string{"Break the path at its first step."}, Commands: []string{"kubectl -n ci edit role pods", "kubectl -n ci edit rolebinding deployer"}}},
		{"Command: kubectl edit clusterrole x and remove what step 1 uses, or kubectl -n a edit rolebinding b and remove User c",
			fixView{Prose: []string{"Command: kubectl edit clusterrole x and remove what step 1 uses, or kubectl -n a edit rolebinding b and remove User c"},
				Commands: []string{"kubectl edit clusterrole x", "kubectl -n a edit rolebinding b"}}},
		{"kubectl -n a create serviceaccount NAME, set serviceAccountName: NAME in each workload (kubectl -n a set serviceaccount KIND/NAME NAME), then kubectl -n a patch serviceaccount default -p '{\"automountServiceAccountToken\":false}'",
			fixView{Prose: []string{"kubectl -n a create serviceaccount NAME, set serviceAccountName: NAME in each workload (kubectl -n a set serviceaccount KIND/NAME NAME), then kubectl -n a patch serviceaccount default -p '{\"automountServiceAccountToken\":false}'"},
				Commands: []string{"kubectl -n a patch serviceaccount default -p '{\"automountServiceAccountToken\":false}'"}}},
		{"Review who needs it.", fixView{Prose: []string{"Review who needs it."}}},
		// A closing "Command: ..." made only of commands is shown once, as
		// commands, not also in the sentence.
		{"Remove the guest from the binding. Command: kubectl -n payments delete rolebinding contractor-view",
			fixView{Prose: []string{"Remove the guest from the binding."}, Commands: []string{"kubectl -n payments delete rolebinding contractor-view"}}},
		{"List the credentials, then delete the old ones. Command: az ad app credential list --id b41f7c2e; az ad app credential delete --id b41f7c2e --key-id 3d7a1f9e",
			fixView{Prose: []string{"List the credentials, then delete the old ones."}, Commands: []string{"az ad app credential list --id b41f7c2e", "az ad app credential delete --id b41f7c2e --key-id 3d7a1f9e"}}},
		{"kubectl edit clusterrolebinding admins to remove only this subject",
			fixView{Prose: []string{"kubectl edit clusterrolebinding admins to remove only this subject"}, Commands: []string{"kubectl edit clusterrolebinding admins"}}},
		{"Remove the label: kubectl label clusterrole sneaky 'rbac.authorization.k8s.io/aggregate-to-view-'; kubectl edit clusterrole view.",
			fixView{Prose: []string{"Remove the label: kubectl label clusterrole sneaky 'rbac.authorization.k8s.io/aggregate-to-view-'; kubectl edit clusterrole view."},
				Commands: []string{"kubectl label clusterrole sneaky 'rbac.authorization.k8s.io/aggregate-to-view-'", "kubectl edit clusterrole view"}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, newFix(tt.rem), cmp.AllowUnexported(fixView{})); diff != "" {
			t.Errorf("newFix(%q) (-want +got):\n%s", tt.rem, diff)
		}
	}
}

// objectsOf returns the objects a report names, as "kind/namespace/name"
// (namespace empty for cluster-scoped ones): every binding and role of a
// finding, a path step or a choke point, and every ServiceAccount subject.
// These are the fixture's objects a command may act on.
func objectsOf(r *secureauditv1.Report) map[string]bool {
	objs := map[string]bool{}
	binding := func(b *secureauditv1.BindingRef) {
		switch b.GetKind() {
		case secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING:
			objs["rolebinding/"+b.GetNamespace()+"/"+b.GetName()] = true
		case secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING:
			objs["clusterrolebinding//"+b.GetName()] = true
		}
	}
	role := func(x *secureauditv1.FindingRole) {
		switch x.GetKind() {
		case secureauditv1.RoleKind_ROLE_KIND_ROLE:
			objs["role/"+x.GetNamespace()+"/"+x.GetName()] = true
		case secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE:
			objs["clusterrole//"+x.GetName()] = true
		}
	}
	for _, f := range append(append([]*secureauditv1.Finding(nil), r.GetFindings()...), r.GetInfrastructureFindings()...) {
		binding(f.GetBinding())
		role(f.GetRole())
		if s := f.GetSubject(); s.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			objs["serviceaccount/"+s.GetNamespace()+"/"+s.GetName()] = true
		}
		for _, p := range f.GetPath() {
			binding(p.GetBinding())
			role(p.GetRole())
		}
	}
	for _, c := range r.GetChokePoints() {
		binding(c.GetBinding())
	}
	return objs
}

// kubectlKinds maps the kinds commands name to the objects' kinds.
var kubectlKinds = map[string]string{
	"role": "role", "roles": "role", "rolebinding": "rolebinding", "rolebindings": "rolebinding",
	"clusterrole": "clusterrole", "clusterroles": "clusterrole", "clusterrolebinding": "clusterrolebinding",
	"clusterrolebindings": "clusterrolebinding", "serviceaccount": "serviceaccount", "serviceaccounts": "serviceaccount", "sa": "serviceaccount",
}

// checkCommand checks one line of a command block: it parses as a kubectl
// or az invocation, and a kubectl command acting on an object names a
// kind and an object the fixture holds (create makes a new one).
func checkCommand(line string, objs map[string]bool) error {
	words, err := ShellWords(line)
	if err != nil {
		return err
	}
	if !Runnable(line) {
		return fmt.Errorf("not one kubectl or az invocation that runs as written")
	}
	if words[0] == "az" {
		if !slices.Contains([]string{"ad", "role", "aks"}, words[1]) {
			return fmt.Errorf("unknown az command group %q", words[1])
		}
		return nil
	}
	var ns string
	var args []string
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-n" || w == "--namespace":
			i++
			ns = words[i]
		case w == "-p" || w == "--patch" || w == "--type" || w == "-o":
			i++
		case strings.HasPrefix(w, "-"):
		default:
			args = append(args, w)
		}
	}
	verb := args[0]
	switch verb {
	case "auth", "get", "describe":
		return nil
	}
	if len(args) < 3 {
		return fmt.Errorf("%s without a kind and a name", verb)
	}
	kind, ok := kubectlKinds[args[1]]
	if !ok {
		return fmt.Errorf("unknown kind %q", args[1])
	}
	if kind == "clusterrole" || kind == "clusterrolebinding" {
		ns = ""
	} else if ns == "" {
		return fmt.Errorf("namespaced kind %s without -n", kind)
	}
	if verb == "create" {
		return nil
	}
	if !objs[kind+"/"+ns+"/"+args[2]] {
		return fmt.Errorf("%s %s in %q is not an object of the fixture", kind, args[2], ns)
	}
	return nil
}

// commandBlocks returns the lines of every fenced sh block of a Markdown
// document.
func commandBlocks(doc string) [][]string {
	var blocks [][]string
	var cur []string
	fence := ""
	for line := range strings.SplitSeq(doc, "\n") {
		switch {
		case fence == "" && strings.HasPrefix(line, "```") && strings.HasSuffix(line, "sh"):
			fence = strings.TrimSuffix(line, "sh")
			cur = nil
		case fence != "" && line == fence:
			blocks = append(blocks, cur)
			fence = ""
		case fence != "":
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestCommandBlocksRun: in every fixture's rendered Markdown, each line of
// every command block is one kubectl or az invocation that runs as
// written, on a kind and object the fixture holds; explanations are never
// inside a block.
func TestCommandBlocksRun(t *testing.T) {
	reports := map[string]*secureauditv1.Report{"sample": sampleReport(), "with path": withPath(), "paths fixture": pathsReport(t), "empty": emptyReport()}
	total := 0
	for name, r := range reports {
		objs := objectsOf(r)
		for _, block := range commandBlocks(string(Markdown(r))) {
			if len(block) == 0 {
				t.Errorf("%s: empty command block", name)
			}
			for _, line := range block {
				total++
				if err := checkCommand(line, objs); err != nil {
					t.Errorf("%s: command %q: %v", name, line, err)
				}
			}
		}
	}
	if total < 20 {
		t.Errorf("only %d command lines checked", total)
	}
	// The checker itself fails on what it must.
	objs := map[string]bool{"role/ci/pods": true}
	for _, bad := range []string{"Remove pods/exec from the Role:", "kubectl -n ci edit role missing", "kubectl edit role pods", "kubectl -n ci create serviceaccount NAME", "helm uninstall x", "kubectl -n ci edit role pods to remove it"} {
		if checkCommand(bad, objs) == nil {
			t.Errorf("checkCommand accepted %q", bad)
		}
	}
}

// TestSARIFChokePoints: one result per choke point, first, at its
// binding, with the paths it closes as related locations.
func TestSARIFChokePoints(t *testing.T) {
	r := pathsReport(t)
	data, err := SARIF(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				RuleID           string `json:"ruleId"`
				Message          struct{ Text string }
				RelatedLocations []struct {
					ID      int
					Message struct{ Text string }
				} `json:"relatedLocations"`
				Locations []struct {
					LogicalLocations []struct {
						FullyQualifiedName string `json:"fullyQualifiedName"`
					} `json:"logicalLocations"`
				}
			}
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	results := doc.Runs[0].Results
	if len(results) < len(r.GetChokePoints()) {
		t.Fatalf("%d results for %d choke points", len(results), len(r.GetChokePoints()))
	}
	for i, cp := range r.GetChokePoints() {
		res := results[i]
		if res.RuleID != ChokeRuleID || res.Locations[0].LogicalLocations[0].FullyQualifiedName != bindingText(cp.GetBinding()) {
			t.Errorf("result %d: rule %s at %v, want the choke point at %s", i, res.RuleID, res.Locations, bindingText(cp.GetBinding()))
		}
		if len(res.RelatedLocations) != len(cp.GetFindingIds()) {
			t.Errorf("result %d: %d related locations, want %d paths", i, len(res.RelatedLocations), len(cp.GetFindingIds()))
		}
		for j, rel := range res.RelatedLocations {
			if rel.ID != j || !strings.Contains(rel.Message.Text, cp.GetFindingIds()[j]) {
				t.Errorf("result %d related %d: %+v", i, j, rel)
			}
		}
	}
	if !strings.Contains(results[0].Message.Text, "closes 5 of 10 proven escalation paths") {
		t.Errorf("first choke result says %q", results[0].Message.Text)
	}
}
