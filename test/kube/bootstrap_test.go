package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/test/kube"
)

var update = flag.Bool("update", false, "rewrite the captured files (services/risk-agent/rules/upstream/bootstrap-clusterroles.json and bootstrap-bindings.json, services/risk-agent/discovery/builtin.json) from the API server")

// bootstrapLabel marks the ClusterRoles of the API server's bootstrap
// policy (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
const bootstrapLabel, bootstrapValue = "kubernetes.io/bootstrapping", "rbac-defaults"

// TestBootstrapPolicyCaptured checks that the upstream bootstrap policy the
// risk-agent embeds (RBAC-035, RBAC-036) is exactly the ClusterRoles a fresh
// API server of this version creates: every ClusterRole labelled
// kubernetes.io/bootstrapping=rbac-defaults, collected with the rbac-agent's
// live source and kept to name, labels, aggregation selectors and rules.
// With -update it rewrites the file.
//
// It also fills the aggregated bootstrap roles in the server as the
// clusterrole-aggregation controller does (see aggregate) and checks that the
// snapshot's own aggregation of the captured file, which the risk-agent uses
// as the upstream effective rules, yields the same rules.
func TestBootstrapPolicyCaptured(t *testing.T) {
	server(t) // skips when there is no API server to run
	ctx := context.Background()
	// A server of its own, untouched by the other tests.
	s, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	collected, err := collect.NewLive(kubeclient.New(admin), "bootstrap", s.Host, v).Load(ctx)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	got := bootstrapPolicy(collected)
	if n := len(got.GetClusterRoles()); n < 50 {
		t.Fatalf("captured %d bootstrap ClusterRoles, want the whole policy (over 50)", n)
	}
	data := marshalPolicy(t, got)

	path := filepath.Join(repoRoot(t), "services", "risk-agent", "rules", "upstream", "bootstrap-clusterroles.json")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(stored, want); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if diff := cmp.Diff(want.GetHeader(), got.GetHeader(), protocmp.Transform()); diff != "" {
		t.Errorf("header of %s (-stored +server):\n%s", path, diff)
	}
	if diffs := diffPolicy(want, got); len(diffs) > 0 {
		t.Errorf("the bootstrap ClusterRoles of %s differ from the API server's; if that is expected "+
			"(another Kubernetes version), rerun with -update and review the change:\n%s", path, strings.Join(diffs, "\n"))
	} else if !bytes.Equal(stored, data) {
		t.Errorf("%s holds the server's policy but not in canonical form; rerun with -update", path)
	}
	t.Logf("%d bootstrap ClusterRoles of %s", len(got.GetClusterRoles()), got.GetHeader().GetServerVersion())

	// The rest of the policy: the bindings the server creates (with their
	// exact roleRef and subjects) and its namespaced Roles, which the
	// risk-agent's platform-managed decision recognises.
	bindings := bootstrapBindings(collected)
	if len(bindings.GetClusterRoleBindings()) < 20 || len(bindings.GetRoles()) == 0 || len(bindings.GetRoleBindings()) == 0 {
		t.Fatalf("captured %d ClusterRoleBindings, %d Roles and %d RoleBindings, want the whole policy",
			len(bindings.GetClusterRoleBindings()), len(bindings.GetRoles()), len(bindings.GetRoleBindings()))
	}
	bpath := filepath.Join(repoRoot(t), "services", "risk-agent", "rules", "upstream", "bootstrap-bindings.json")
	bdata := marshalPolicy(t, bindings)
	if *update {
		if err := os.WriteFile(bpath, bdata, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bstored, err := os.ReadFile(bpath)
	if err != nil {
		t.Fatal(err)
	}
	bwant := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(bstored, bwant); err != nil {
		t.Fatalf("parse %s: %v", bpath, err)
	}
	if diff := cmp.Diff(bwant, bindings, protocmp.Transform()); diff != "" {
		t.Errorf("the bootstrap bindings and Roles of %s differ from the API server's; if that is expected, rerun with -update and review the change (-stored +server):\n%s", bpath, diff)
	} else if !bytes.Equal(bstored, bdata) {
		t.Errorf("%s holds the server's policy but not in canonical form; rerun with -update", bpath)
	}
	t.Logf("%d bootstrap ClusterRoleBindings, %d Roles, %d RoleBindings", len(bindings.GetClusterRoleBindings()), len(bindings.GetRoles()), len(bindings.GetRoleBindings()))

	// The upstream effective rules: the snapshot's aggregation of the
	// captured roles against the server's roles filled as the controller
	// does.
	upstream := snapshot.Build([]*secureauditv1.SnapshotChunk{got}, nil)
	if err := aggregate(ctx, admin); err != nil {
		t.Fatal(err)
	}
	filled, err := collect.NewLive(kubeclient.New(admin), "bootstrap", s.Host, v).Load(ctx)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	aggregated := 0
	for _, cr := range bootstrapPolicy(filled).GetClusterRoles() {
		if len(cr.GetAggregationSelectors()) == 0 {
			continue
		}
		aggregated++
		name := cr.GetMeta().GetName()
		eff, _ := upstream.EffectiveClusterRoleRules(name)
		if diff := cmp.Diff(ruleSet(cr.GetRules()), ruleSet(eff), protocmp.Transform()); diff != "" {
			t.Errorf("effective rules of %s (-aggregated in the server +snapshot.Build of the captured policy):\n%s", name, diff)
		}
	}
	if aggregated < 3 {
		t.Errorf("%d aggregated bootstrap ClusterRoles, want at least admin, edit and view", aggregated)
	}
}

// bootstrapPolicy returns the bootstrap ClusterRoles of a collected
// snapshot as one chunk: sorted by name, metadata reduced to name and labels
// (no uid, no annotations), under a header naming the server version and
// no collection time, so that the same server always yields the same bytes.
func bootstrapPolicy(s *collect.Snapshot) *secureauditv1.SnapshotChunk {
	out := &secureauditv1.SnapshotChunk{Header: &secureauditv1.SnapshotHeader{
		Cluster:       "upstream",
		Source:        secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:        "kube-apiserver " + s.Header.GetServerVersion() + ", ClusterRoles labelled " + bootstrapLabel + "=" + bootstrapValue,
		ServerVersion: s.Header.GetServerVersion(),
	}}
	for _, cr := range s.ClusterRoles {
		if cr.GetMeta().GetLabels()[bootstrapLabel] != bootstrapValue {
			continue
		}
		out.ClusterRoles = append(out.ClusterRoles, &secureauditv1.ClusterRole{
			Meta:                 &secureauditv1.ObjectMeta{Name: cr.GetMeta().GetName(), Labels: cr.GetMeta().GetLabels()},
			Rules:                cr.GetRules(),
			AggregationSelectors: cr.GetAggregationSelectors(),
		})
	}
	slices.SortFunc(out.ClusterRoles, func(a, b *secureauditv1.ClusterRole) int {
		return strings.Compare(a.GetMeta().GetName(), b.GetMeta().GetName())
	})
	return out
}

// bootstrapBindings returns the bootstrap ClusterRoleBindings, Roles and
// RoleBindings (labelled kubernetes.io/bootstrapping=rbac-defaults) of a
// collected snapshot as one chunk, each sorted by namespace and name, with
// metadata reduced to namespace, name and labels.
func bootstrapBindings(s *collect.Snapshot) *secureauditv1.SnapshotChunk {
	out := &secureauditv1.SnapshotChunk{Header: &secureauditv1.SnapshotHeader{
		Cluster:       "upstream",
		Source:        secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE,
		Origin:        "kube-apiserver " + s.Header.GetServerVersion() + ", ClusterRoleBindings, Roles and RoleBindings labelled " + bootstrapLabel + "=" + bootstrapValue,
		ServerVersion: s.Header.GetServerVersion(),
	}}
	meta := func(m *secureauditv1.ObjectMeta) (*secureauditv1.ObjectMeta, bool) {
		return &secureauditv1.ObjectMeta{Namespace: m.GetNamespace(), Name: m.GetName(), Labels: m.GetLabels()}, m.GetLabels()[bootstrapLabel] == bootstrapValue
	}
	for _, b := range s.ClusterRoleBindings {
		if m, ok := meta(b.GetMeta()); ok {
			out.ClusterRoleBindings = append(out.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{Meta: m, RoleRef: b.GetRoleRef(), Subjects: b.GetSubjects()})
		}
	}
	for _, r := range s.Roles {
		if m, ok := meta(r.GetMeta()); ok {
			out.Roles = append(out.Roles, &secureauditv1.Role{Meta: m, Rules: r.GetRules()})
		}
	}
	for _, b := range s.RoleBindings {
		if m, ok := meta(b.GetMeta()); ok {
			out.RoleBindings = append(out.RoleBindings, &secureauditv1.RoleBinding{Meta: m, RoleRef: b.GetRoleRef(), Subjects: b.GetSubjects()})
		}
	}
	key := func(m *secureauditv1.ObjectMeta) string { return m.GetNamespace() + "/" + m.GetName() }
	slices.SortFunc(out.ClusterRoleBindings, func(a, b *secureauditv1.ClusterRoleBinding) int {
		return strings.Compare(key(a.GetMeta()), key(b.GetMeta()))
	})
	slices.SortFunc(out.Roles, func(a, b *secureauditv1.Role) int { return strings.Compare(key(a.GetMeta()), key(b.GetMeta())) })
	slices.SortFunc(out.RoleBindings, func(a, b *secureauditv1.RoleBinding) int { return strings.Compare(key(a.GetMeta()), key(b.GetMeta())) })
	return out
}

// marshalPolicy is protojson indented by encoding/json: protojson's own
// whitespace is deliberately unstable, json.Indent's is not.
func marshalPolicy(t *testing.T, c *secureauditv1.SnapshotChunk) []byte {
	t.Helper()
	compact, err := protojson.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// diffPolicy describes, role by role in name order, how the stored policy
// differs from the server's: roles only in one of them, and a diff of each
// role in both that differs.
func diffPolicy(stored, server *secureauditv1.SnapshotChunk) []string {
	byName := func(c *secureauditv1.SnapshotChunk) map[string]*secureauditv1.ClusterRole {
		out := map[string]*secureauditv1.ClusterRole{}
		for _, cr := range c.GetClusterRoles() {
			out[cr.GetMeta().GetName()] = cr
		}
		return out
	}
	a, b := byName(stored), byName(server)
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		switch x, y := a[n], b[n]; {
		case y == nil:
			out = append(out, "ClusterRole "+n+": stored, not on the server")
		case x == nil:
			out = append(out, "ClusterRole "+n+": on the server, not stored")
		default:
			if diff := cmp.Diff(x, y, protocmp.Transform()); diff != "" {
				out = append(out, "ClusterRole "+n+" (-stored +server):\n"+diff)
			}
		}
	}
	return out
}

// ruleSet sorts rules by their deterministic encoding and drops duplicates:
// the controller and the snapshot may order the same rules differently.
func ruleSet(rules []*secureauditv1.PolicyRule) []*secureauditv1.PolicyRule {
	enc := func(r *secureauditv1.PolicyRule) string {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		return string(b)
	}
	out := slices.Clone(rules)
	slices.SortFunc(out, func(a, b *secureauditv1.PolicyRule) int { return strings.Compare(enc(a), enc(b)) })
	return slices.CompactFunc(out, func(a, b *secureauditv1.PolicyRule) bool { return proto.Equal(a, b) })
}
