package aks_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/aks"
	"secureaudit.dev/services/risk-agent/registry"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// want is one expected finding of a fixture case.
type want struct {
	Case           string `json:"case"`
	RuleID         string `json:"ruleId"`
	Severity       string `json:"severity"`
	Subject        string `json:"subject,omitempty"`
	SeverityReason string `json:"severityReason"`
	Description    string `json:"description"`
	Remediation    string `json:"remediation"`
}

// cases reads every DirectoryChunk of a fixture directory (each *.json but
// want.json and snapshot.json, the empty RBAC snapshot that lets the
// compliance test run every fixture through the whole assessment), by file
// name.
func cases(t *testing.T, dir string) map[string]*secureauditv1.DirectoryChunk {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*secureauditv1.DirectoryChunk{}
	for _, f := range files {
		if b := filepath.Base(f); b == "want.json" || b == "snapshot.json" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := &secureauditv1.DirectoryChunk{}
		if err := protojson.Unmarshal(data, c); err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		out[filepath.Base(f)] = c
	}
	return out
}

// TestFixtures asserts, for every rule, the exact findings of that rule in
// each case of its fixture: positives, and near misses (near-*.json) that
// must give none.
func TestFixtures(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range aks.Catalogue() {
		t.Run(r.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", r.ID)
			cs := cases(t, dir)
			names := make([]string, 0, len(cs))
			for n := range cs {
				names = append(names, n)
			}
			slices.Sort(names)
			var got []want
			for _, n := range names {
				if err := v.Validate(cs[n]); err != nil {
					t.Fatalf("%s: %v", n, err)
				}
				for _, f := range aks.Evaluate([]*secureauditv1.DirectoryChunk{cs[n]}) {
					if err := v.Validate(f); err != nil {
						t.Errorf("%s: invalid finding: %v", n, err)
					}
					if err := registry.Check(f); err != nil {
						t.Errorf("%s: %v", n, err)
					}
					if f.GetRuleId() != r.ID {
						continue
					}
					if strings.HasPrefix(n, "near-") {
						t.Errorf("near miss %s fired %s", n, r.ID)
					}
					var sub string
					if f.GetSubject() != nil {
						sub = strings.TrimPrefix(f.GetSubject().GetKind().String(), "SUBJECT_KIND_") + " " + f.GetSubject().GetName()
						if f.GetSubject().GetServicePrincipal() {
							sub += " (service principal " + f.GetSubject().GetDisplayName() + ")"
						}
					}
					got = append(got, want{n, f.GetRuleId(), strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"), sub, f.GetSeverityReason(), f.GetDescription(), f.GetRemediation()})
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

// TestNoCluster: without the cluster's configuration no AKS rule runs.
func TestNoCluster(t *testing.T) {
	if got := aks.Evaluate([]*secureauditv1.DirectoryChunk{{}}); len(got) != 0 {
		t.Errorf("Evaluate without a cluster = %d findings, want none", len(got))
	}
	if got := aks.Evaluate(nil); len(got) != 0 {
		t.Errorf("Evaluate(nil) = %d findings, want none", len(got))
	}
}

// TestDeterministic: the same input gives the same findings, and the
// input is not modified.
func TestDeterministic(t *testing.T) {
	in := cases(t, filepath.Join("testdata", "rules", aks.LocalAccounts))["directory.json"]
	before := proto.Clone(in)
	a := aks.Evaluate([]*secureauditv1.DirectoryChunk{in})
	b := aks.Evaluate([]*secureauditv1.DirectoryChunk{in})
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("got %d and %d findings", len(a), len(b))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Errorf("finding %d differs between runs", i)
		}
	}
	if !proto.Equal(before, in) {
		t.Error("Evaluate modified its input")
	}
}

// TestCatalogue: IDs are unique and ordered, and every rule cites SOC 2.
func TestCatalogue(t *testing.T) {
	var ids []string
	for _, r := range aks.Catalogue() {
		ids = append(ids, r.ID)
		if !slices.ContainsFunc(r.Controls, func(c string) bool { return strings.HasPrefix(c, "SOC2-") }) {
			t.Errorf("%s cites no SOC 2 criterion", r.ID)
		}
		if _, err := os.Stat(filepath.Join("testdata", "rules", r.ID)); err != nil {
			t.Errorf("%s has no fixture: %v", r.ID, err)
		}
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("rule IDs not sorted and unique: %v", ids)
	}
}

// TestStandingSharesTheGrant: AKS-009 and AKS-008 about the same grant
// share its grant key (one report entry) and have IDs of their own.
func TestStandingSharesTheGrant(t *testing.T) {
	in := cases(t, filepath.Join("testdata", "rules", aks.StandingAdmin))["directory.json"]
	byKey := map[string][]string{}
	ids := map[string]bool{}
	for _, f := range aks.Evaluate([]*secureauditv1.DirectoryChunk{in}) {
		if ids[f.GetId()] {
			t.Errorf("finding ID %s used twice", f.GetId())
		}
		ids[f.GetId()] = true
		byKey[f.GetGrantKey()] = append(byKey[f.GetGrantKey()], f.GetRuleId())
	}
	standing := 0
	for key, rules := range byKey {
		if slices.Contains(rules, aks.StandingAdmin) {
			standing++
			if !slices.Contains(rules, aks.AzureAdmin) {
				t.Errorf("grant %s: %v, AKS-009 without AKS-008", key, rules)
			}
		}
	}
	if standing != 4 {
		t.Errorf("%d grants with AKS-009, want 4", standing)
	}
}
