package rules_test

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const (
	critical = secureauditv1.Severity_SEVERITY_CRITICAL
	high     = secureauditv1.Severity_SEVERITY_HIGH
	medium   = secureauditv1.Severity_SEVERITY_MEDIUM
	low      = secureauditv1.Severity_SEVERITY_LOW
)

// TestSeverityEscalation is the escalation table: base severity, resourceNames
// (-1, and no cluster-wide step: named objects are what the grant reaches at
// any scope; named Secrets at most LOW), cluster-wide scope (+1 below
// CRITICAL, never for RBAC-010), group subject (+1), capped at CRITICAL, and
// at HIGH for a grant confined to an ordinary namespace.
func TestSeverityEscalation(t *testing.T) {
	secrets := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}}
	named := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"db"}}
	pods := &secureauditv1.PolicyRule{Verbs: []string{"create"}, ApiGroups: []string{""}, Resources: []string{"pods"}}
	user := &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "u"}
	group := &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "g"}
	tests := []struct {
		name    string
		rule    string
		role    string // ClusterRole name; "" uses "r" with rules
		rules   []*secureauditv1.PolicyRule
		cluster bool
		subject *secureauditv1.Subject
		want    secureauditv1.Severity
	}{
		{"secrets, namespace, user", rules.SecretsRead, "", []*secureauditv1.PolicyRule{secrets}, false, user, high},
		{"secrets, cluster, user", rules.SecretsRead, "", []*secureauditv1.PolicyRule{secrets}, true, user, critical},
		{"secrets, namespace, group (namespace scope caps at HIGH)", rules.SecretsRead, "", []*secureauditv1.PolicyRule{secrets}, false, group, high},
		{"secrets, cluster, group (capped)", rules.SecretsRead, "", []*secureauditv1.PolicyRule{secrets}, true, group, critical},
		{"secrets by name, namespace, user: at most LOW", rules.SecretsRead, "", []*secureauditv1.PolicyRule{named}, false, user, low},
		{"secrets by name, cluster, user: at most LOW at any scope", rules.SecretsRead, "", []*secureauditv1.PolicyRule{named}, true, user, low},
		{"secrets by name, cluster, group: at most LOW", rules.SecretsRead, "", []*secureauditv1.PolicyRule{named}, true, group, low},
		{"secrets by name and unrestricted: no reduction", rules.SecretsRead, "", []*secureauditv1.PolicyRule{named, secrets}, false, user, high},
		{"pod create, namespace, user", rules.PodCreate, "", []*secureauditv1.PolicyRule{pods}, false, user, medium},
		{"pod create, cluster, user", rules.PodCreate, "", []*secureauditv1.PolicyRule{pods}, true, user, high},
		{"pod create, cluster, group", rules.PodCreate, "", []*secureauditv1.PolicyRule{pods}, true, group, critical},
		{"pod create plus secrets: chain", rules.PodCreate, "", []*secureauditv1.PolicyRule{pods, secrets}, false, user, high},
		{"pod create plus named secrets: no chain", rules.PodCreate, "", []*secureauditv1.PolicyRule{pods, named}, false, user, medium},
		{"cluster-admin, namespace, user", rules.ClusterAdmin, "cluster-admin", nil, false, user, high},
		{"cluster-admin, namespace, group (namespace scope caps at HIGH)", rules.ClusterAdmin, "cluster-admin", nil, false, group, high},
		{"cluster-admin, cluster, user", rules.ClusterAdmin, "cluster-admin", nil, true, user, critical},
		{"edit, cluster, user", rules.AdminEditCluster, "edit", nil, true, user, critical},
		{"dangling, namespace, user", rules.DanglingBinding, "missing", nil, false, user, low},
		{"dangling, cluster, user: no scope step", rules.DanglingBinding, "missing", nil, true, user, low},
		{"dangling, cluster, group", rules.DanglingBinding, "missing", nil, true, group, medium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunk := &secureauditv1.SnapshotChunk{}
			role := tt.role
			if role == "" {
				role = "r"
				chunk.ClusterRoles = []*secureauditv1.ClusterRole{{Meta: &secureauditv1.ObjectMeta{Name: "r"}, Rules: tt.rules}}
			}
			ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: role}
			if tt.cluster {
				chunk.ClusterRoleBindings = []*secureauditv1.ClusterRoleBinding{{Meta: &secureauditv1.ObjectMeta{Name: "b"}, RoleRef: ref, Subjects: []*secureauditv1.Subject{tt.subject}}}
			} else {
				chunk.RoleBindings = []*secureauditv1.RoleBinding{{Meta: &secureauditv1.ObjectMeta{Name: "b", Namespace: "n"}, RoleRef: ref, Subjects: []*secureauditv1.Subject{tt.subject}}}
			}
			fs := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil))
			i := slices.IndexFunc(fs, func(f *secureauditv1.Finding) bool { return f.GetRuleId() == tt.rule })
			if i < 0 {
				t.Fatalf("no %s finding in %v", tt.rule, fs)
			}
			if got := fs[i].GetSeverity(); got != tt.want {
				t.Errorf("severity = %v, want %v (reason %q)", got, tt.want, fs[i].GetSeverityReason())
			}
		})
	}
}

// allFixtures merges every fixture's objects into one chunk; objects with
// the same key across fixtures are deduplicated deterministically by Build.
func allFixtures(t *testing.T) (*secureauditv1.SnapshotChunk, []*secureauditv1.DirectoryChunk) {
	all := &secureauditv1.SnapshotChunk{}
	var dirs []*secureauditv1.DirectoryChunk
	for _, r := range rules.Catalogue() {
		c, d := loadFixture(t, filepath.Join("testdata", "rules", r.ID))
		c.Header = nil
		proto.Merge(all, c)
		if d != nil {
			dirs = append(dirs, d)
		}
	}
	return all, dirs
}

func marshal(t *testing.T, fs []*secureauditv1.Finding) []byte {
	t.Helper()
	var out []byte
	for _, f := range fs {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// split spreads a chunk's objects over n chunks in a shuffled order.
func split(all *secureauditv1.SnapshotChunk, n int, rng *rand.Rand) []*secureauditv1.SnapshotChunk {
	chunks := make([]*secureauditv1.SnapshotChunk, n)
	for i := range chunks {
		chunks[i] = &secureauditv1.SnapshotChunk{}
	}
	pick := func() *secureauditv1.SnapshotChunk { return chunks[rng.IntN(n)] }
	for _, i := range rng.Perm(len(all.ClusterRoles)) {
		c := pick()
		c.ClusterRoles = append(c.ClusterRoles, all.ClusterRoles[i])
	}
	for _, i := range rng.Perm(len(all.Roles)) {
		c := pick()
		c.Roles = append(c.Roles, all.Roles[i])
	}
	for _, i := range rng.Perm(len(all.ClusterRoleBindings)) {
		c := pick()
		c.ClusterRoleBindings = append(c.ClusterRoleBindings, all.ClusterRoleBindings[i])
	}
	for _, i := range rng.Perm(len(all.RoleBindings)) {
		c := pick()
		c.RoleBindings = append(c.RoleBindings, all.RoleBindings[i])
	}
	for _, i := range rng.Perm(len(all.ServiceAccounts)) {
		c := pick()
		c.ServiceAccounts = append(c.ServiceAccounts, all.ServiceAccounts[i])
	}
	for _, i := range rng.Perm(len(all.Workloads)) {
		c := pick()
		c.Workloads = append(c.Workloads, all.Workloads[i])
	}
	for _, i := range rng.Perm(len(all.Namespaces)) {
		c := pick()
		c.Namespaces = append(c.Namespaces, all.Namespaces[i])
	}
	rng.Shuffle(n, func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
	chunks[n-1].Trailer = all.Trailer // the trailer closes the stream
	return chunks
}

func TestDeterminism(t *testing.T) {
	all, dirs := allFixtures(t)
	first := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{all}, dirs))
	if len(first) < 30 {
		t.Fatalf("only %d findings over all fixtures", len(first))
	}
	want := marshal(t, first)
	if got := marshal(t, rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{all}, dirs))); string(got) != string(want) {
		t.Fatal("same input, different output")
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		chunks := split(all, 1+rng.IntN(5), rng)
		ds := slices.Clone(dirs)
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		if got := marshal(t, rules.Evaluate(snapshot.Build(chunks, ds))); string(got) != string(want) {
			t.Fatalf("seed %d: shuffled input changed the output", seed)
		}
	}
}

func TestSorted(t *testing.T) {
	all, dirs := allFixtures(t)
	fs := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{all}, dirs))
	for i := 1; i < len(fs); i++ {
		a, b := fs[i-1], fs[i]
		if a.GetSeverity() > b.GetSeverity() {
			t.Fatalf("finding %d (%v) after %d (%v): severity order", i, b.GetSeverity(), i-1, a.GetSeverity())
		}
		if a.GetSeverity() == b.GetSeverity() && a.GetScope().GetLevel() > b.GetScope().GetLevel() {
			t.Fatalf("finding %d: namespace scope before cluster scope", i)
		}
	}
	if fs[0].GetSeverity() != critical || fs[len(fs)-1].GetSeverity() == critical {
		t.Errorf("first %v, last %v", fs[0].GetSeverity(), fs[len(fs)-1].GetSeverity())
	}
}

// TestKubeSystemIsNotCapped: a grant in kube-system reaches the control
// plane's credentials, so the namespace cap does not apply there.
func TestKubeSystemIsNotCapped(t *testing.T) {
	secrets := &secureauditv1.PolicyRule{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}}
	group := &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "g"}
	ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "r"}
	for _, tt := range []struct {
		ns   string
		want secureauditv1.Severity
	}{{"kube-system", critical}, {"team-a", high}} {
		chunk := &secureauditv1.SnapshotChunk{
			ClusterRoles: []*secureauditv1.ClusterRole{{Meta: &secureauditv1.ObjectMeta{Name: "r"}, Rules: []*secureauditv1.PolicyRule{secrets}}},
			RoleBindings: []*secureauditv1.RoleBinding{{Meta: &secureauditv1.ObjectMeta{Name: "b", Namespace: tt.ns}, RoleRef: ref, Subjects: []*secureauditv1.Subject{group}}},
		}
		fs := rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil))
		i := slices.IndexFunc(fs, func(f *secureauditv1.Finding) bool { return f.GetRuleId() == rules.SecretsRead })
		if i < 0 {
			t.Fatalf("%s: no %s finding", tt.ns, rules.SecretsRead)
		}
		if got := fs[i].GetSeverity(); got != tt.want {
			t.Errorf("%s: severity = %v, want %v (reason %q)", tt.ns, got, tt.want, fs[i].GetSeverityReason())
		}
	}
}
