package entry

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

const (
	critical = secureauditv1.Severity_SEVERITY_CRITICAL
	high     = secureauditv1.Severity_SEVERITY_HIGH
	low      = secureauditv1.Severity_SEVERITY_LOW
)

// hit builds a rule hit of ServiceAccount sa in namespace app through
// binding (a ClusterRoleBinding when ns is "", else a RoleBinding in ns).
func hit(id, rule, sa, binding, ns string, sev secureauditv1.Severity) *secureauditv1.Finding {
	f := &secureauditv1.Finding{
		Id: id, RuleId: rule, Severity: sev,
		Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "app", Name: sa},
		Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: binding},
		Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: binding},
		Scope:   &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
	}
	if ns != "" {
		f.Binding = &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Namespace: ns, Name: binding}
		f.Scope = &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: ns}
	}
	return f
}

// shape is an entry as IDs: the lead, then own hits, amplified and narrower.
type shape struct {
	Lead      string
	Own       []string
	Amplified []string
	Narrower  [][]string
}

func shapes(es []Entry) []shape {
	ids := func(fs []*secureauditv1.Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.GetId())
		}
		return out
	}
	var out []shape
	for _, e := range es {
		s := shape{Lead: e.Lead().GetId(), Own: ids(e.Grant.Hits), Amplified: ids(e.Amplified)}
		for _, g := range e.Narrower {
			s.Narrower = append(s.Narrower, ids(g.Hits))
		}
		out = append(out, s)
	}
	return out
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name string
		in   []*secureauditv1.Finding
		want []shape
	}{{
		name: "every rule of one grant is one entry led by its worst hit",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-004", "ctl", "ctl", "", low),
			hit("b", "RBAC-003", "ctl", "ctl", "", critical),
			hit("c", "RBAC-012", "ctl", "ctl", "", low),
		},
		want: []shape{{Lead: "b", Own: []string{"a", "b", "c"}}},
	}, {
		name: "a token automount reported against another binding joins the worst grant",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "wide", "", high),
			hit("b", "RBAC-005", "ctl", "pods", "app", critical),
			hit("c", "RBAC-012", "ctl", "other", "app", low),
			hit("d", "RBAC-039", "ctl", "other", "app", high),
		},
		want: []shape{
			{Lead: "b", Own: []string{"b"}, Amplified: []string{"c", "d"}},
			{Lead: "a", Own: []string{"a"}},
		},
	}, {
		name: "an amplifier of a subject with no other grant stays an entry",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-012", "exporter", "view", "", low),
			hit("b", "RBAC-003", "ctl", "ctl", "", high),
		},
		want: []shape{{Lead: "b", Own: []string{"b"}}, {Lead: "a", Own: []string{"a"}}},
	}, {
		name: "a namespace grant the subject holds cluster-wide folds under it",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "local", "app", high),
			hit("b", "RBAC-003", "ctl", "wide", "", high),
			hit("c", "RBAC-017", "ctl", "wide", "", high),
		},
		want: []shape{{Lead: "b", Own: []string{"b", "c"}, Narrower: [][]string{{"a"}}}},
	}, {
		name: "a narrower grant rated worse than the broad one stays its own entry",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "local", "app", critical),
			hit("b", "RBAC-003", "ctl", "wide", "", low),
		},
		want: []shape{{Lead: "a", Own: []string{"a"}}, {Lead: "b", Own: []string{"b"}}},
	}, {
		name: "a grant with a rule the broad one lacks stays its own entry",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "local", "app", high),
			hit("b", "RBAC-006", "ctl", "local", "app", high),
			hit("c", "RBAC-003", "ctl", "wide", "", high),
		},
		want: []shape{{Lead: "c", Own: []string{"c"}}, {Lead: "a", Own: []string{"a", "b"}}},
	}, {
		name: "a namespace grant adding only a LOW rule to what the cluster-wide grant holds folds under it",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "local", "app", high),
			hit("b", "RBAC-031", "ctl", "local", "app", low),
			hit("c", "RBAC-003", "ctl", "wide", "", critical),
		},
		want: []shape{{Lead: "c", Own: []string{"c"}, Narrower: [][]string{{"a", "b"}}}},
	}, {
		name: "a grant of LOW rules alone folds under the subject's cluster-wide grant",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-031", "ctl", "local", "app", low),
			hit("b", "RBAC-016", "ctl", "wide", "", critical),
		},
		want: []shape{{Lead: "b", Own: []string{"b"}, Narrower: [][]string{{"a"}}}},
	}, {
		name: "a grant adding a MEDIUM rule the broad one lacks stays its own entry",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-031", "ctl", "local", "app", secureauditv1.Severity_SEVERITY_MEDIUM),
			hit("b", "RBAC-003", "ctl", "local", "app", high),
			hit("c", "RBAC-003", "ctl", "wide", "", critical),
		},
		want: []shape{{Lead: "c", Own: []string{"c"}}, {Lead: "b", Own: []string{"a", "b"}}},
	}, {
		name: "cluster-admin covers every other grant of the subject, with its amplifiers",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "crd", "", critical),
			hit("b", "PATH-001", "ctl", "crd", "", critical),
			hit("c", "RBAC-001", "ctl", "admin", "", critical),
			hit("d", "RBAC-012", "ctl", "crd", "", low),
		},
		want: []shape{{Lead: "c", Own: []string{"c"}, Narrower: [][]string{{"a", "b", "d"}}}},
	}, {
		name: "identical cluster-wide grants fold into the first",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-003", "ctl", "one", "", high),
			hit("b", "RBAC-003", "ctl", "two", "", high),
		},
		want: []shape{{Lead: "a", Own: []string{"a"}, Narrower: [][]string{{"b"}}}},
	}, {
		name: "a proven hit leads before a conditional path of the same severity",
		in: []*secureauditv1.Finding{
			func() *secureauditv1.Finding {
				f := hit("a", "PATH-001", "ctl", "local", "app", high)
				f.Conditional = true
				return f
			}(),
			hit("b", "RBAC-003", "ctl", "local", "app", high),
		},
		want: []shape{{Lead: "b", Own: []string{"a", "b"}}},
	}, {
		name: "a conditional path does not keep a grant held more broadly apart, a proven one does",
		in: []*secureauditv1.Finding{
			func() *secureauditv1.Finding {
				f := hit("a", "PATH-001", "ctl", "local", "app", high)
				f.Conditional = true
				return f
			}(),
			hit("b", "RBAC-003", "ctl", "local", "app", high),
			hit("c", "RBAC-003", "ctl", "wide", "", critical),
			hit("d", "PATH-001", "other", "local", "app", critical),
			hit("e", "RBAC-003", "other", "local", "app", high),
			hit("f", "RBAC-003", "other", "wide", "", critical),
		},
		want: []shape{
			{Lead: "c", Own: []string{"c"}, Narrower: [][]string{{"a", "b"}}},
			{Lead: "f", Own: []string{"f"}},
			{Lead: "d", Own: []string{"d", "e"}},
		},
	}, {
		name: "grants of different subjects never fold",
		in: []*secureauditv1.Finding{
			hit("a", "RBAC-001", "admin", "admin", "", critical),
			hit("b", "RBAC-003", "ctl", "wide", "", high),
		},
		want: []shape{{Lead: "a", Own: []string{"a"}}, {Lead: "b", Own: []string{"b"}}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Group(tc.in)
			if diff := cmp.Diff(tc.want, shapes(got)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			seen := map[string]int{}
			for _, e := range got {
				for _, f := range e.Hits() {
					seen[f.GetId()]++
				}
			}
			for _, f := range tc.in {
				if seen[f.GetId()] != 1 {
					t.Errorf("hit %s is in %d entries, want 1", f.GetId(), seen[f.GetId()])
				}
			}
		})
	}
}

func TestKeyPrefersTheRiskAgents(t *testing.T) {
	a := hit("a", "RBAC-003", "ctl", "wide", "", high)
	b := hit("b", "RBAC-017", "ctl", "wide", "", high)
	if Key(a) != Key(b) {
		t.Errorf("hits of one grant have keys %q and %q", Key(a), Key(b))
	}
	a.GrantKey = "0123456789abcdef"
	if Key(a) != "0123456789abcdef" {
		t.Errorf("Key = %q, want the risk-agent's grant key", Key(a))
	}
}

// TestAdds: a narrower grant's hit of a rule the entry's own grant lacks
// is an addition; a hit the own grant holds, an amplifier, or anything
// under cluster-admin is not.
func TestAdds(t *testing.T) {
	local, del, tok := hit("a", "RBAC-003", "ctl", "local", "app", high), hit("b", "RBAC-031", "ctl", "local", "app", low), hit("d", "RBAC-012", "ctl", "local", "app", low)
	es := Group([]*secureauditv1.Finding{local, del, tok, hit("c", "RBAC-003", "ctl", "wide", "", critical)})
	if len(es) != 1 {
		t.Fatalf("got %d entries, want 1", len(es))
	}
	got := map[string]bool{}
	for _, f := range []*secureauditv1.Finding{local, del, tok} {
		got[f.GetId()] = es[0].Adds(f)
	}
	if diff := cmp.Diff(map[string]bool{"a": false, "b": true, "d": false}, got); diff != "" {
		t.Errorf("Adds (-want +got):\n%s", diff)
	}
	admin := Group([]*secureauditv1.Finding{del, hit("e", "RBAC-001", "ctl", "admin", "", critical)})
	if len(admin) != 1 || admin[0].Adds(del) {
		t.Errorf("under cluster-admin a narrower hit adds nothing: %d entries", len(admin))
	}
}

// TestInformational: an entry whose every hit is INFO, about a
// ServiceAccount or a role alone, of RBAC rules, is informational; one
// LOW hit, a person or group, or another family keeps it in the list.
func TestInformational(t *testing.T) {
	info := secureauditv1.Severity_SEVERITY_INFO
	person := hit("p", "RBAC-003", "x", "rb", "app", info)
	person.Subject = &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "alice"}
	group := hit("g", "RBAC-003", "x", "rb2", "app", info)
	group.Subject = &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "devs"}
	role := &secureauditv1.Finding{Id: "r", RuleId: "RBAC-036", Severity: info, Family: secureauditv1.RuleFamily_RULE_FAMILY_RBAC,
		Role:  &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "reports-admin"},
		Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}}
	aks := hit("k", "AKS-001", "y", "c", "", info)
	aks.Family = secureauditv1.RuleFamily_RULE_FAMILY_AKS
	findings := []*secureauditv1.Finding{
		hit("a", "RBAC-003", "certs", "own", "app", info), // informational
		hit("b", "RBAC-003", "mixed", "m", "app", info),   // with a LOW hit of the same grant: not
		hit("c", "RBAC-031", "mixed", "m", "app", low),
		person, group, role, aks,
	}
	main, informational := Split(Group(findings))
	var got []string
	for _, e := range informational {
		got = append(got, e.Lead().GetId())
	}
	if diff := cmp.Diff([]string{"r", "a"}, got); diff != "" {
		t.Errorf("informational entries (-want +got):\n%s", diff)
	}
	if len(main)+len(informational) != 6 {
		t.Errorf("%d main and %d informational entries, want 6 in all", len(main), len(informational))
	}
}
