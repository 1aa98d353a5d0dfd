package inject

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// fixtureRules are the INJ rules with a fixture directory,
// testdata/rules/<ID>/: snapshot.json (a SnapshotChunk), optionally
// directory.json (a DirectoryChunk), and want.json, the exact findings.
var fixtureRules = []Category{Prose}

// want is one expected finding of a fixture.
type want struct {
	RuleID      string `json:"ruleId"`
	Severity    string `json:"severity"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Remediation string `json:"remediation"`
}

// TestFixtures asserts, for every rule with a fixture, the exact set of that
// rule's findings in it: positives and near misses.
func TestFixtures(t *testing.T) {
	for _, c := range fixtureRules {
		t.Run(c.RuleID(), func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", c.RuleID())
			chunk := &secureauditv1.SnapshotChunk{}
			if !unmarshal(t, filepath.Join(dir, "snapshot.json"), chunk) {
				t.Fatalf("%s: no snapshot.json", dir)
			}
			var dirs []*secureauditv1.DirectoryChunk
			if d := (&secureauditv1.DirectoryChunk{}); unmarshal(t, filepath.Join(dir, "directory.json"), d) {
				dirs = append(dirs, d)
			}
			snap := snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, dirs)
			var got []want
			for _, d := range Inspect(snap, dirs) {
				if d.Finding.GetRuleId() == c.RuleID() {
					got = append(got, want{
						RuleID:      d.Finding.GetRuleId(),
						Severity:    strings.TrimPrefix(d.Finding.GetSeverity().String(), "SEVERITY_"),
						Title:       d.Finding.GetTitle(),
						Description: d.Finding.GetDescription(),
						Remediation: d.Finding.GetRemediation(),
					})
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
				t.Errorf("findings of %s (-want +got):\n%s", c.RuleID(), diff)
			}
		})
	}
}

// unmarshal reads the protojson file at path into m; false when it is absent.
func unmarshal(t *testing.T, path string, m proto.Message) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return true
}
