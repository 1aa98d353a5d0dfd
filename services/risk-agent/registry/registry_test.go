package registry_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
)

// prefixes are the rule ID prefixes of each family.
var prefixes = map[registry.Family]string{
	registry.RBAC:      "RBAC-",
	registry.Identity:  "ENTRA-",
	registry.Path:      "PATH-",
	registry.Injection: "INJ-",
	registry.AKS:       "AKS-",
}

var (
	idPattern      = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]{3}$`)
	controlPattern = regexp.MustCompile(`^(CIS-(AKS-)?[0-9]+(\.[0-9]+)*|SOC2-[A-Z]+[0-9]+\.[0-9]+)$`)
)

// TestRulesComplete checks every rule of the registry: a well-formed ID of
// its family, a title, a defined base severity, a rationale, a remediation,
// and controls that each have a title.
func TestRulesComplete(t *testing.T) {
	all := registry.All()
	if len(all) < 60 {
		t.Errorf("%d rules registered; RBAC, PATH, ENTRA and INJ make at least 60", len(all))
	}
	for _, r := range all {
		if !idPattern.MatchString(r.ID) || !strings.HasPrefix(r.ID, prefixes[r.Family]) {
			t.Errorf("%s: ID does not fit family %v", r.ID, r.Family)
		}
		if r.Title == "" || len(r.Title) > 256 || r.Rationale == "" || r.Remediation == "" {
			t.Errorf("%s: title, rationale or remediation missing", r.ID)
		}
		if _, ok := secureauditv1.Severity_name[int32(r.Severity)]; !ok || r.Severity == secureauditv1.Severity_SEVERITY_UNSPECIFIED {
			t.Errorf("%s: base severity %v", r.ID, r.Severity)
		}
		if len(r.Controls) == 0 {
			t.Errorf("%s: no controls", r.ID)
		}
		for _, c := range r.Controls {
			if !controlPattern.MatchString(c) || registry.ControlTitle(c) == "" {
				t.Errorf("%s: control %q malformed or without a title", r.ID, c)
			}
		}
		got, ok := registry.Lookup(r.ID)
		if !ok || got.ID != r.ID {
			t.Errorf("%s: Lookup does not find it", r.ID)
		}
	}
	if _, ok := registry.Lookup("RBAC-999"); ok {
		t.Error("Lookup found an unregistered rule")
	}
}

// TestFixtureDirectories checks that every registered rule has a fixture
// directory with its exact expected findings (want.json) and an input
// (snapshot.json), and that every fixture directory of every family's
// package names a registered rule of that family.
func TestFixtureDirectories(t *testing.T) {
	root := ".." // services/risk-agent
	for _, r := range registry.All() {
		for _, file := range []string{"snapshot.json", "want.json"} {
			if _, err := os.Stat(filepath.Join(root, r.Fixture(), file)); err != nil {
				t.Errorf("%s: fixture %s: %v", r.ID, file, err)
			}
		}
	}
	for _, f := range []registry.Family{registry.RBAC, registry.Identity, registry.Path, registry.Injection} {
		pkg := registry.Rule{Family: f}.Package()
		entries, err := os.ReadDir(filepath.Join(root, pkg, "testdata", "rules"))
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, e := range entries {
			r, ok := registry.Lookup(e.Name())
			if !ok || r.Family != f {
				t.Errorf("%s/testdata/rules/%s names no registered %v rule", pkg, e.Name(), f)
			}
		}
	}
}

// TestFinding checks the one finding builder: base severity by default, the
// description from rationale and detail, the remediation with the command,
// folded hits with their controls, and control titles for all of them, each
// once.
func TestFinding(t *testing.T) {
	r := registry.MustLookup("RBAC-001")
	scope := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	f := r.Finding(registry.Hit{ID: "0123456789abcdef", Scope: scope, Detail: "Detail.", Command: "kubectl delete clusterrolebinding x", Folded: []string{"RBAC-015", "RBAC-004"}})
	if f.GetFamily() != registry.RBAC || f.GetTitle() != r.Title || f.GetSeverity() != r.Severity || f.GetSeverityReason() != "base CRITICAL" {
		t.Errorf("family, title or severity: %v", f)
	}
	if want := r.Rationale + " Detail."; f.GetDescription() != want {
		t.Errorf("description %q, want %q", f.GetDescription(), want)
	}
	if want := r.Remediation + " Command: kubectl delete clusterrolebinding x"; f.GetRemediation() != want {
		t.Errorf("remediation %q, want %q", f.GetRemediation(), want)
	}
	var folded []string
	for _, h := range f.GetFolded() {
		folded = append(folded, h.GetRuleId())
	}
	if diff := cmp.Diff([]string{"RBAC-004", "RBAC-015"}, folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	var titles []string
	for _, c := range f.GetControlTitles() {
		titles = append(titles, c.GetId())
		if c.GetTitle() != registry.ControlTitle(c.GetId()) {
			t.Errorf("%s: title %q", c.GetId(), c.GetTitle())
		}
	}
	// RBAC-001's own, then RBAC-004's CIS-5.1.3, then RBAC-015's CIS-5.1.11.
	if diff := cmp.Diff([]string{"CIS-5.1.1", "SOC2-CC6.3", "CIS-5.1.3", "CIS-5.1.11"}, titles); diff != "" {
		t.Errorf("control titles (-want +got):\n%s", diff)
	}
	if err := registry.Check(f); err != nil {
		t.Error(err)
	}
	// A finding owns its controls: changing them leaves the registry as it is.
	f.Controls[0], f.Folded[0].Controls[0] = "CIS-9.9", "CIS-9.9"
	if registry.MustLookup("RBAC-001").Controls[0] != "CIS-5.1.1" || registry.MustLookup("RBAC-004").Controls[0] != "CIS-5.1.3" {
		t.Error("changing a finding's controls changed the registry")
	}
	f.Controls[0], f.Folded[0].Controls[0] = "CIS-5.1.1", "CIS-5.1.3"
	f.Family = registry.Identity
	if registry.Check(f) == nil {
		t.Error("Check accepted a finding of the wrong family")
	}

	long := r.Finding(registry.Hit{ID: "0123456789abcdef", Scope: scope, Description: strings.Repeat("é", 3000), Severity: secureauditv1.Severity_SEVERITY_LOW, SeverityReason: "lowered"})
	if len(long.GetDescription()) > 4096 || !strings.HasSuffix(long.GetDescription(), "...") || long.GetSeverity() != secureauditv1.Severity_SEVERITY_LOW || long.GetSeverityReason() != "lowered" {
		t.Errorf("long description or explicit severity not kept: %d bytes, %v %q", len(long.GetDescription()), long.GetSeverity(), long.GetSeverityReason())
	}
}

// TestControls checks the controls an audit states a status for: every
// control of every rule, each once, ordered CIS then SOC 2, numerically.
func TestControls(t *testing.T) {
	var got []string
	for _, c := range registry.Controls() {
		got = append(got, c.GetId())
		if c.GetTitle() == "" {
			t.Errorf("%s: no title", c.GetId())
		}
	}
	want := []string{
		"CIS-5.1.1", "CIS-5.1.2", "CIS-5.1.3", "CIS-5.1.4", "CIS-5.1.5", "CIS-5.1.6", "CIS-5.1.7", "CIS-5.1.8",
		"CIS-5.1.9", "CIS-5.1.10", "CIS-5.1.11", "CIS-5.1.12", "CIS-5.1.13",
		"CIS-AKS-5.4.1", "CIS-AKS-5.4.2", "CIS-AKS-5.5.1", "CIS-AKS-5.5.2",
		"SOC2-CC6.1", "SOC2-CC6.2", "SOC2-CC6.3", "SOC2-CC6.6", "SOC2-CC6.8", "SOC2-CC7.2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("controls (-want +got):\n%s", diff)
	}
	// Without an AKS cluster the controls only AKS rules map to are not
	// assessed; those other rules share (CIS-5.1.1 through AKS-008) stay.
	var without []string
	for _, c := range registry.ControlsWithout(registry.AKS) {
		without = append(without, c.GetId())
	}
	wantWithout := slices.DeleteFunc(slices.Clone(want), func(id string) bool {
		return strings.HasPrefix(id, "CIS-AKS-") || id == "SOC2-CC6.6"
	})
	if diff := cmp.Diff(wantWithout, without); diff != "" {
		t.Errorf("controls without the AKS family (-want +got):\n%s", diff)
	}
	if !slices.IsSortedFunc(got, registry.CompareControls) {
		t.Error("not sorted")
	}
}

// TestCISTitles checks every CIS control title against the benchmark's own
// wording as aquasecurity/kube-bench transcribes it (testdata/cis-titles.txt,
// with its source): the same text, without kube-bench's "(Automated)" or
// "(Manual)" assessment marker. Every CIS control a rule maps to must be
// there, so that no control number is written from memory.
func TestCISTitles(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "cis-titles.txt"))
	if err != nil {
		t.Fatal(err)
	}
	published := map[string]string{}
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("cis-titles.txt:%d: want ID<TAB>text", n+1)
		}
		text = strings.TrimSuffix(strings.TrimSuffix(text, " (Automated)"), " (Manual)")
		published[id] = text
	}
	seen := 0
	for _, c := range registry.Controls() {
		if !strings.HasPrefix(c.GetId(), "CIS-") {
			continue
		}
		seen++
		want, ok := published[c.GetId()]
		if !ok {
			t.Errorf("%s: not in the published check list (testdata/cis-titles.txt)", c.GetId())
			continue
		}
		if c.GetTitle() != want {
			t.Errorf("%s: title %q, the benchmark's is %q", c.GetId(), c.GetTitle(), want)
		}
	}
	if seen == 0 {
		t.Fatal("no CIS control")
	}
}
