package paths_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// want is one expected path finding: who, through which binding, and the
// whole path as the description states it.
type want struct {
	Severity string   `json:"severity"`
	Subject  string   `json:"subject"`
	Binding  string   `json:"binding"`
	Steps    []string `json:"steps"`
}

func load(t *testing.T, dir string) *snapshot.Snapshot {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(data, chunk); err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	return snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)
}

func steps(t *testing.T, f *secureauditv1.Finding) []string {
	t.Helper()
	_, rest, ok := strings.Cut(f.GetDescription(), " Path (")
	var path string
	if ok {
		_, path, ok = strings.Cut(rest, "): ")
	}
	if !ok {
		t.Fatalf("no path in %q", f.GetDescription())
	}
	return strings.Split(strings.TrimSuffix(path, "."), "; ")
}

// TestFixture asserts the exact path findings of the fixture: positives
// (pod create, exec, bind, impersonate, CSR approval, nodes/proxy, secrets
// read, a named token request, multi-hop) and near misses (no risky pod,
// bind restricted to a harmless role, token not mounted, direct admins).
func TestFixture(t *testing.T) {
	dir := filepath.Join("testdata", "rules", paths.RuleID)
	s := load(t, dir)
	var got []want
	for _, f := range paths.Find(rules.Analyze(s)) {
		if f.GetRuleId() != paths.RuleID {
			t.Errorf("rule %s", f.GetRuleId())
		}
		// The structured path says what the description says, step by step.
		words := steps(t, f)
		if len(f.GetPath()) != len(words) {
			t.Errorf("%s: %d structured steps, %d in the description", f.GetSubject().GetName(), len(f.GetPath()), len(words))
		}
		for i, ps := range f.GetPath() {
			if i >= len(words) {
				break
			}
			head := fmt.Sprintf("%d. %s --[%s", i+1, ps.GetFrom(), ps.GetCapability())
			if !strings.HasPrefix(words[i], head) || !strings.HasSuffix(words[i], "]--> "+ps.GetTo()) {
				t.Errorf("step %d: structured %q ... %q, description %q", i+1, head, ps.GetTo(), words[i])
			}
			if ps.GetBinding() != nil && !strings.Contains(words[i], "(via "+rules.BindingText(ps.GetBinding())+", ") {
				t.Errorf("step %d: binding %s not in the description %q", i+1, rules.BindingText(ps.GetBinding()), words[i])
			}
			if i > 0 && ps.GetFrom() != f.GetPath()[i-1].GetTo() {
				t.Errorf("step %d starts at %q, the previous step ended at %q", i+1, ps.GetFrom(), f.GetPath()[i-1].GetTo())
			}
		}
		got = append(got, want{
			Severity: strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"),
			Subject:  f.GetSubject().GetName(),
			Binding:  rules.BindingText(f.GetBinding()),
			Steps:    steps(t, f),
		})
	}
	path := filepath.Join(dir, "want.json")
	if *update {
		var buf strings.Builder
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(got); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wantList []want
	if err := json.Unmarshal(data, &wantList); err != nil {
		t.Fatal(err)
	}
	if len(wantList) == 0 {
		t.Fatal("no expected findings")
	}
	if diff := cmp.Diff(wantList, got); diff != "" {
		t.Errorf("path findings (-want +got):\n%s", diff)
	}
}

// TestFindingsValid checks the path findings against the contract's
// constraints and the catalogue's conventions.
func TestFindingsValid(t *testing.T) {
	s := load(t, filepath.Join("testdata", "rules", paths.RuleID))
	seen := map[string]bool{}
	for _, f := range paths.Find(rules.Analyze(s)) {
		if len(f.GetId()) != 16 || seen[f.GetId()] {
			t.Errorf("bad or duplicate id %q", f.GetId())
		}
		seen[f.GetId()] = true
		if err := registry.Check(f); err != nil {
			t.Error(err)
		}
		if f.GetSubject() == nil || f.GetBinding() == nil || f.GetRole() == nil || len(f.GetMatchedRules()) == 0 {
			t.Errorf("incomplete finding %v", f)
		}
		if !strings.Contains(f.GetRemediation(), "kubectl ") || len(f.GetDescription()) > 4096 {
			t.Errorf("remediation or description: %v", f)
		}
	}
}

// TestDeterministic: the same snapshot gives byte-identical findings.
func TestDeterministic(t *testing.T) {
	s := load(t, filepath.Join("testdata", "rules", paths.RuleID))
	a, b := paths.Find(rules.Analyze(s)), paths.Find(rules.Analyze(s))
	if len(a) != len(b) {
		t.Fatal("different lengths")
	}
	for i := range a {
		x, _ := protojson.Marshal(a[i])
		y, _ := protojson.Marshal(b[i])
		if string(x) != string(y) {
			t.Fatalf("finding %d differs", i)
		}
	}
}
