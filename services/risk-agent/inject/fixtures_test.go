package inject_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/inject"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// want is one expected finding of a fixture.
type want struct {
	RuleID   string `json:"ruleId"`
	Severity string `json:"severity"`
	Object   string `json:"object"`
	Field    string `json:"field"`
	Subject  string `json:"subject,omitempty"`
	Binding  string `json:"binding,omitempty"`
	Role     string `json:"role,omitempty"`
}

func summarize(d inject.Detection) want {
	f := d.Finding
	w := want{
		RuleID:   f.GetRuleId(),
		Severity: strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"),
		Object:   d.Object,
		Field:    d.Field,
		Binding:  f.GetBinding().GetName(),
		Role:     f.GetRole().GetName(),
	}
	if s := f.GetSubject(); s != nil {
		w.Subject = strings.TrimPrefix(s.GetKind().String(), "SUBJECT_KIND_") + " " + s.GetName()
	}
	return w
}

// loadFixture reads dir/snapshot.json (a SnapshotChunk) and, when present,
// dir/directory.json (a DirectoryChunk).
func loadFixture(t *testing.T, dir string) (*snapshot.Snapshot, []*secureauditv1.DirectoryChunk) {
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

// TestFixtures asserts, for every injection rule, the exact findings of
// that rule when the scanner reads its fixture (a snapshot and a directory
// with positives and near misses in every surface): the object, the field
// and the severity of each.
func TestFixtures(t *testing.T) {
	rules := registry.Of(registry.Injection)
	if len(rules) == 0 {
		t.Fatal("no injection rules registered")
	}
	for _, r := range rules {
		t.Run(r.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", r.ID)
			snap, dirs := loadFixture(t, dir)
			var got []want
			for _, d := range inject.Inspect(snap, dirs) {
				if err := registry.Check(d.Finding); err != nil {
					t.Error(err)
				}
				if d.Finding.GetRuleId() == r.ID {
					got = append(got, summarize(d))
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

// TestCategoriesRegistered checks that every detector category names a
// registered injection rule whose title names the category, so that a new
// category cannot produce findings the registry does not describe.
func TestCategoriesRegistered(t *testing.T) {
	n := 0
	for c := inject.Category(1); c.RuleID() != "INJ-000"; c++ {
		n++
		r, ok := registry.Lookup(c.RuleID())
		if !ok {
			t.Errorf("category %q: rule %s is not registered (add it to services/risk-agent/registry/inject.go and a fixture in testdata/rules/%s)", c, c.RuleID(), c.RuleID())
			continue
		}
		if r.Family != registry.Injection {
			t.Errorf("%s: family %v, want injection", r.ID, r.Family)
		}
		if want := "possible prompt injection: " + c.String(); r.Title != want {
			t.Errorf("%s: title %q, want %q", r.ID, r.Title, want)
		}
	}
	if got := len(registry.Of(registry.Injection)); got != n {
		t.Errorf("%d injection rules registered, %d detector categories", got, n)
	}
}
