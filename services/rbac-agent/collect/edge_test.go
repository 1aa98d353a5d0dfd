package collect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
)

// obj is a Kubernetes object as kubectl get -o json writes it.
type obj = map[string]any

func clusterRoleObj(name string, meta obj, rules ...obj) obj {
	m := obj{"name": name}
	for k, v := range meta {
		m[k] = v
	}
	return obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": m, "rules": rules}
}

func ruleObj(fields ...any) obj {
	r := obj{}
	for i := 0; i+1 < len(fields); i += 2 {
		r[fields[i].(string)] = fields[i+1]
	}
	return r
}

func verbs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("verb%d", i)
	}
	return out
}

// TestEdgeObjects loads, through the file path, objects the API server
// accepts at the edges of its validation (pkg/apis/rbac/validation and
// ObjectMeta validation of k8s.io/kubernetes v1.37): each is in the snapshot
// exactly as written, and the snapshot passes the contract after a round
// trip through the wire format. Objects beyond the limits that protect
// memory are left out, named in the trailer, and the load succeeds.
func TestEdgeObjects(t *testing.T) {
	v := newValidator(t)
	annotations300 := obj{}
	for i := range 300 {
		annotations300[fmt.Sprintf("example.com/a%d", i)] = "v"
	}
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	name300 := "role-" + long("x", 295)
	nsLong := "Team." + long("n", 295)
	tests := []struct {
		name string
		in   obj
		// want is the object in the snapshot, nil when it is left out.
		want proto.Message
		// unaudited is the reason's start when the object is left out.
		unaudited string
	}{
		{
			name: "empty verb beside a real one",
			in:   clusterRoleObj("empty-verb", nil, ruleObj("verbs", []string{"", "get"}, "apiGroups", []string{""}, "resources", []string{"pods"})),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "empty-verb"}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: []string{"", "get"}, ApiGroups: []string{""}, Resources: []string{"pods"}},
			}},
		},
		{
			name: "only an empty verb",
			in:   clusterRoleObj("only-empty-verb", nil, ruleObj("verbs", []string{""}, "apiGroups", []string{""}, "resources", []string{"pods"})),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "only-empty-verb"}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: []string{""}, ApiGroups: []string{""}, Resources: []string{"pods"}},
			}},
		},
		{
			name: "empty resource, API group and resourceName",
			in: obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
				"metadata": obj{"name": "empties", "namespace": "team-a"},
				"rules":    []obj{ruleObj("verbs", []string{"list"}, "apiGroups", []string{""}, "resources", []string{"", "pods"}, "resourceNames", []string{""})}},
			want: &secureauditv1.Role{Meta: &secureauditv1.ObjectMeta{Name: "empties", Namespace: "team-a"}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: []string{"list"}, ApiGroups: []string{""}, Resources: []string{"", "pods"}, ResourceNames: []string{""}},
			}},
		},
		{
			name: "empty non-resource URL",
			in:   clusterRoleObj("empty-url", nil, ruleObj("verbs", []string{"get"}, "nonResourceURLs", []string{"", "/healthz"})),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "empty-url"}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: []string{"get"}, NonResourceUrls: []string{"", "/healthz"}},
			}},
		},
		{
			name: "ServiceAccount subject in an uppercase, dotted namespace",
			in: obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
				"metadata": obj{"name": "odd-sa"},
				"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
				"subjects": []obj{{"kind": "ServiceAccount", "name": "bot", "namespace": "Team.Alpha"}}},
			want: &secureauditv1.ClusterRoleBinding{
				Meta:     &secureauditv1.ObjectMeta{Name: "odd-sa"},
				RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "bot", Namespace: "Team.Alpha"}},
			},
		},
		{
			name: "ServiceAccount subject in a 300-character namespace",
			in: obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
				"metadata": obj{"name": "long-sa", "namespace": "team-a"},
				"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
				"subjects": []obj{{"kind": "ServiceAccount", "name": "bot", "namespace": nsLong}}},
			want: &secureauditv1.RoleBinding{
				Meta:     &secureauditv1.ObjectMeta{Name: "long-sa", Namespace: "team-a"},
				RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "view"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Name: "bot", Namespace: nsLong}},
			},
		},
		{
			name: "User subject with a namespace (ignored by the authorizer)",
			in: obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
				"metadata": obj{"name": "user-ns", "namespace": "team-a"},
				"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "empties"},
				"subjects": []obj{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice", "namespace": "elsewhere"}}},
			want: &secureauditv1.RoleBinding{
				Meta:     &secureauditv1.ObjectMeta{Name: "user-ns", Namespace: "team-a"},
				RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "empties"},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "alice"}},
			},
		},
		{
			name: "one 70 KiB annotation",
			in:   clusterRoleObj("big-annotation", obj{"annotations": obj{"example.com/blob": long("a", 70<<10)}}),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "big-annotation", Annotations: map[string]string{"example.com/blob": long("a", 70<<10)}}},
		},
		{
			name: "300 annotations",
			in:   clusterRoleObj("many-annotations", obj{"annotations": annotations300}),
			want: func() proto.Message {
				m := map[string]string{}
				for k := range annotations300 {
					m[k] = "v"
				}
				return &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "many-annotations", Annotations: m}}
			}(),
		},
		{
			name: "300-character role name, and a binding to it",
			in:   clusterRoleObj(name300, nil, ruleObj("verbs", []string{"get"}, "apiGroups", []string{""}, "resources", []string{"secrets"})),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: name300}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}},
			}},
		},
		{
			name: "binding to the 300-character role",
			in: obj{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
				"metadata": obj{"name": name300},
				"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name300},
				"subjects": []obj{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}}},
			want: &secureauditv1.ClusterRoleBinding{
				Meta:     &secureauditv1.ObjectMeta{Name: name300},
				RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: name300},
				Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "bob"}},
			},
		},
		{
			name: "a rule with 71 verbs",
			in:   clusterRoleObj("verbs-71", nil, ruleObj("verbs", verbs(71), "apiGroups", []string{""}, "resources", []string{"pods"})),
			want: &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: "verbs-71"}, Rules: []*secureauditv1.PolicyRule{
				{Verbs: verbs(71), ApiGroups: []string{""}, Resources: []string{"pods"}},
			}},
		},
		{
			name:      "a rule with 5,000 verbs is left out and reported",
			in:        clusterRoleObj("verbs-5000", nil, ruleObj("verbs", verbs(5000), "apiGroups", []string{""}, "resources", []string{"pods"})),
			unaudited: "object too large to audit: rules[0].verbs exceeds repeated.max_items",
		},
		{
			name:      "a 2,000-character name is left out and reported",
			in:        clusterRoleObj("n"+long("x", 1999), nil),
			unaudited: "object too large to audit: meta.name exceeds string.max_len",
		},
		{
			name:      "a 5 MiB object is left out and reported",
			in:        clusterRoleObj("huge", obj{"annotations": obj{"example.com/blob": long("a", 5<<20)}}),
			unaudited: "object too large to audit: ",
		},
	}
	dir := t.TempDir()
	var items []obj
	for _, tt := range tests {
		items = append(items, tt.in)
	}
	data, err := json.Marshal(obj{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "edge.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := collect.NewFiles(path, "edge", v, collect.WithClock(clock)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The snapshot crosses the wire: every chunk encodes, decodes and
	// passes the contract.
	for i, c := range snap.Chunks(0) {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back := &secureauditv1.SnapshotChunk{}
		if err := proto.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(&secureauditv1.CollectResponse{Chunk: back}); err != nil {
			t.Errorf("chunk %d breaks the contract: %v", i, err)
		}
	}
	byName := map[string]proto.Message{}
	for _, o := range snap.ClusterRoles {
		byName["ClusterRole/"+o.GetMeta().GetName()] = o
	}
	for _, o := range snap.Roles {
		byName["Role/"+o.GetMeta().GetName()] = o
	}
	for _, o := range snap.ClusterRoleBindings {
		byName["ClusterRoleBinding/"+o.GetMeta().GetName()] = o
	}
	for _, o := range snap.RoleBindings {
		byName["RoleBinding/"+o.GetMeta().GetName()] = o
	}
	unaudited := map[string]string{}
	for _, u := range snap.Unaudited {
		unaudited[u.GetKind()+"/"+u.GetName()] = u.GetReason()
	}
	if got, want := snap.UnauditedCount, uint32(3); got != want {
		t.Errorf("UnauditedCount = %d, want %d", got, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := tt.in["metadata"].(obj)
			key := tt.in["kind"].(string) + "/" + meta["name"].(string)
			if tt.unaudited != "" {
				if _, ok := byName[key]; ok {
					t.Errorf("%s is in the snapshot, want it left out", key)
				}
				if reason, ok := unaudited[tt.in["kind"].(string)+"/"+meta["name"].(string)[:min(len(meta["name"].(string)), 1024)]]; !ok || !strings.HasPrefix(reason, tt.unaudited) {
					t.Errorf("unaudited reason = %q (listed %v), want it to start with %q", reason, ok, tt.unaudited)
				}
				return
			}
			got, ok := byName[key]
			if !ok {
				t.Fatalf("%s missing from the snapshot (unaudited: %q)", key, unaudited[key])
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", key, diff)
			}
		})
	}
}
