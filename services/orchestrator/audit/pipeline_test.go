package audit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestPrincipals(t *testing.T) {
	user := func(n string) *secureauditv1.Subject {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: n}
	}
	group := func(n string) *secureauditv1.Subject {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: n}
	}
	sa := &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "app", Namespace: "a"}
	s := &snapshot{chunks: []*secureauditv1.SnapshotChunk{
		{RoleBindings: []*secureauditv1.RoleBinding{{Subjects: []*secureauditv1.Subject{user("bob@example.com"), sa, group("system:authenticated")}}}},
		{ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{Subjects: []*secureauditv1.Subject{
			group("4f2c1b9e-0000-4000-8000-000000000001"), user("bob@example.com"), user("system:kube-scheduler"), user("alice@example.com"),
		}}}},
	}}
	want := []*secureauditv1.Principal{
		{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: "4f2c1b9e-0000-4000-8000-000000000001"},
		{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "alice@example.com"},
		{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "bob@example.com"},
	}
	if diff := cmp.Diff(want, s.principals(), protocmp.Transform()); diff != "" {
		t.Errorf("principals (-want +got):\n%s", diff)
	}
}

func TestCountSeverities(t *testing.T) {
	fs := []*secureauditv1.Finding{
		{Severity: secureauditv1.Severity_SEVERITY_CRITICAL},
		{Severity: secureauditv1.Severity_SEVERITY_CRITICAL},
		{Severity: secureauditv1.Severity_SEVERITY_HIGH},
		{Severity: secureauditv1.Severity_SEVERITY_LOW},
		{Severity: secureauditv1.Severity_SEVERITY_INFO},
	}
	want := &secureauditv1.SeverityCounts{Critical: 2, High: 1, Low: 1, Info: 1}
	if diff := cmp.Diff(want, countSeverities(fs), protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTruncateKeepsValidUTF8(t *testing.T) {
	long := strings.Repeat("é", 5000) + "\xff"
	got := truncate(long, 4096)
	if !utf8.ValidString(got) {
		t.Fatal("truncate produced invalid UTF-8")
	}
	if n := utf8.RuneCountInString(got); n != 4096 {
		t.Errorf("truncated to %d runes, want 4096", n)
	}
	if !strings.HasSuffix(got, "...") {
		t.Error("truncation is not marked")
	}
	if got := truncate("short\xff", 10); !utf8.ValidString(got) {
		t.Errorf("short invalid input stays invalid: %q", got)
	}
}
