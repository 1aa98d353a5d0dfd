package compact

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestCompactorSharesEqualParts checks that findings decoded separately
// share their equal parts after compaction, keep their different ones, and
// encode to exactly the bytes they arrived as.
func TestCompactorSharesEqualParts(t *testing.T) {
	mk := func(id, subject string, verbs ...string) *secureauditv1.Finding {
		return &secureauditv1.Finding{
			Id:     id,
			RuleId: "RBAC-001",
			Title:  "wildcard access",
			Subject: &secureauditv1.SubjectRef{
				Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: subject,
			},
			Scope:         &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "team-a"},
			MatchedRules:  []*secureauditv1.PolicyRule{{Verbs: verbs, Resources: []string{"pods"}}},
			Controls:      []string{"CIS-5.1.3"},
			ControlTitles: []*secureauditv1.ControlTitle{{Id: "CIS-5.1.3", Title: "Minimize wildcard use"}},
		}
	}
	// Decoded from the wire, as the server receives them: no two share
	// anything to begin with.
	var fs []*secureauditv1.Finding
	var wire [][]byte
	for _, f := range []*secureauditv1.Finding{mk("a", "alice", "*"), mk("b", "alice", "*"), mk("c", "bob", "get")} {
		data, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var got secureauditv1.Finding
		if err := proto.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		fs, wire = append(fs, &got), append(wire, data)
	}
	c := New()
	for _, f := range fs {
		c.Finding(f)
	}
	a, b, o := fs[0], fs[1], fs[2]
	if a.GetSubject() != b.GetSubject() || a.GetScope() != b.GetScope() || a.GetMatchedRules()[0] != b.GetMatchedRules()[0] || a.GetControlTitles()[0] != b.GetControlTitles()[0] {
		t.Error("equal subject, scope, rule or control title not shared")
	}
	if a.GetScope() != o.GetScope() || a.GetControlTitles()[0] != o.GetControlTitles()[0] {
		t.Error("equal scope or control title of another subject's finding not shared")
	}
	if a.GetSubject() == o.GetSubject() || a.GetMatchedRules()[0] == o.GetMatchedRules()[0] {
		t.Error("different subject or rule shared")
	}
	if o.GetSubject().GetName() != "bob" || o.GetMatchedRules()[0].GetVerbs()[0] != "get" {
		t.Errorf("finding c changed: %v", o)
	}
	for i, f := range fs {
		data, err := proto.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, wire[i]) {
			t.Errorf("finding %d encodes differently after compaction", i)
		}
	}
}
