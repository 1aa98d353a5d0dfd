package audit

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestPrincipalsWorkloadIdentity: ServiceAccounts' workload identity client
// IDs are resolved too, once each.
func TestPrincipalsWorkloadIdentity(t *testing.T) {
	sa := func(name, clientID string) *secureauditv1.ServiceAccount {
		meta := &secureauditv1.ObjectMeta{Name: name, Namespace: "ci"}
		if clientID != "" {
			meta.Annotations = map[string]string{"azure.workload.identity/client-id": clientID}
		}
		return &secureauditv1.ServiceAccount{Meta: meta}
	}
	s := &snapshot{chunks: []*secureauditv1.SnapshotChunk{{
		ServiceAccounts: []*secureauditv1.ServiceAccount{sa("a", "478c0813-e243-4bca-9af3-63d4930fa261"), sa("b", ""), sa("c", "478c0813-e243-4bca-9af3-63d4930fa261")},
		RoleBindings: []*secureauditv1.RoleBinding{{Subjects: []*secureauditv1.Subject{
			{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "bob@example.com"},
		}}},
	}}}
	want := []*secureauditv1.Principal{
		{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: "478c0813-e243-4bca-9af3-63d4930fa261"},
		{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "bob@example.com"},
	}
	if diff := cmp.Diff(want, s.principals(), protocmp.Transform()); diff != "" {
		t.Errorf("principals (-want +got):\n%s", diff)
	}
}

func TestDirectoryWarnings(t *testing.T) {
	many := &directory{partial: true}
	for i := range 12 {
		many.errors = append(many.errors, &secureauditv1.LookupError{Lookup: "group g" + string(rune('a'+i)), Message: "throttled"})
	}
	tests := []struct {
		name string
		d    *directory
		want []string
	}{
		{"complete", &directory{}, nil},
		{"partial", &directory{partial: true, errors: []*secureauditv1.LookupError{{Lookup: "group g1", Message: "503"}}}, []string{"identity data is partial: 1 directory lookups failed: group g1: 503"}},
		{"many errors", many, []string{"identity data is partial: 12 directory lookups failed: group ga: throttled; group gb: throttled; group gc: throttled; group gd: throttled; group ge: throttled; group gf: throttled; group gg: throttled; group gh: throttled; group gi: throttled; group gj: throttled; and 2 more"}},
		{"excess", &directory{excess: []string{"Directory.ReadWrite.All"}}, []string{"violation: the entra-agent's credential holds Graph application permissions beyond its read-only set: Directory.ReadWrite.All"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.d.warnings()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// A report lists every failed lookup up to the contract's bound; past it the
// last entry counts the rest, so the number stays right.
func TestReportedLookupErrors(t *testing.T) {
	mk := func(n int) []*secureauditv1.LookupError {
		var out []*secureauditv1.LookupError
		for i := range n {
			out = append(out, &secureauditv1.LookupError{Lookup: fmt.Sprintf("group g%d/members", i), Message: "503"})
		}
		return out
	}
	if got := reportedLookupErrors(mk(1000)); len(got) != 1000 || got[999].GetLookup() != "group g999/members" {
		t.Errorf("1000 errors: got %d, last %v", len(got), got[len(got)-1])
	}
	all := mk(1500)
	got := reportedLookupErrors(all)
	if len(got) != 1000 {
		t.Fatalf("1500 errors: %d listed, want 1000", len(got))
	}
	if last := got[999]; last.GetLookup() != "more lookups" || !strings.HasPrefix(last.GetMessage(), "501 more directory lookups failed") {
		t.Errorf("last entry = %v, want one counting the 501 others", last)
	}
	if all[999].GetLookup() != "group g999/members" {
		t.Error("the caller's list was changed")
	}
}
