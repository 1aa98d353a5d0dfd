package rules_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// pristine is the captured bootstrap policy alone: every ClusterRole,
// ClusterRoleBinding, Role and RoleBinding a fresh API server creates.
func pristine(t *testing.T) *secureauditv1.SnapshotChunk {
	t.Helper()
	out := &secureauditv1.SnapshotChunk{}
	for _, name := range []string{"bootstrap-clusterroles.json", "bootstrap-bindings.json"} {
		data, err := os.ReadFile(filepath.Join("upstream", name))
		if err != nil {
			t.Fatal(err)
		}
		c := &secureauditv1.SnapshotChunk{}
		if err := protojson.Unmarshal(data, c); err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		c.Header = nil
		proto.Merge(out, c)
	}
	out.Header = &secureauditv1.SnapshotHeader{Cluster: "pristine", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE}
	return out
}

func evaluate(c *secureauditv1.SnapshotChunk) []*secureauditv1.Finding {
	return rules.Evaluate(snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil))
}

// mainFindings summarizes the findings outside the appendix.
func mainFindings(fs []*secureauditv1.Finding) []string {
	var out []string
	for _, f := range fs {
		if !f.GetInfrastructure() {
			out = append(out, f.GetRuleId()+" "+strings.TrimPrefix(f.GetSubject().GetKind().String(), "SUBJECT_KIND_")+" "+
				f.GetSubject().GetNamespace()+"/"+f.GetSubject().GetName()+" via "+f.GetBinding().GetName()+" "+f.GetRole().GetName())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestPristineCluster: the bootstrap policy alone yields no main finding,
// and every one of its grants is recognised as platform-managed.
func TestPristineCluster(t *testing.T) {
	c := pristine(t)
	if len(c.GetClusterRoleBindings()) < 20 || len(c.GetRoleBindings()) == 0 {
		t.Fatalf("the captured policy has %d ClusterRoleBindings and %d RoleBindings", len(c.GetClusterRoleBindings()), len(c.GetRoleBindings()))
	}
	fs := evaluate(c)
	if got := mainFindings(fs); len(got) > 0 {
		t.Errorf("main findings on a pristine cluster:\n%s", strings.Join(got, "\n"))
	}
	if len(fs) == 0 {
		t.Errorf("no findings at all: the appendix should list the platform's own powerful grants (cluster-admin to system:masters)")
	}
	a := rules.Analyze(snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil))
	if got, want := len(a.ManagedGrants()), len(a.Grants()); got != want {
		t.Errorf("%d of %d grants recognised as platform-managed", got, want)
	}
}

func sub(kind, ns, name string) *secureauditv1.Subject {
	s := &secureauditv1.Subject{Name: name, Namespace: ns, Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER}
	switch kind {
	case "Group":
		s.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
	case "ServiceAccount":
		s.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT
	}
	return s
}

func crb(name, role string, subs ...*secureauditv1.Subject) *secureauditv1.ClusterRoleBinding {
	return &secureauditv1.ClusterRoleBinding{
		Meta:     &secureauditv1.ObjectMeta{Name: name},
		RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: role},
		Subjects: subs,
	}
}

func cr(name string, rs ...*secureauditv1.PolicyRule) *secureauditv1.ClusterRole {
	return &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: name}, Rules: rs}
}

func rule(groups, resources, verbs []string) *secureauditv1.PolicyRule {
	return &secureauditv1.PolicyRule{ApiGroups: groups, Resources: resources, Verbs: verbs}
}

// TestRecognition: what the platform creates is recognised by content;
// everything else is judged, wherever it lives and whatever it is named.
func TestRecognition(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *secureauditv1.SnapshotChunk)
		want   []string // main findings
	}{
		{
			// The hand-made cluster: a ServiceAccount planted in
			// kube-system, bound through a binding named like the platform's.
			name: "planted kube-system ServiceAccount",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("system:node-helper",
					rule([]string{"certificates.k8s.io"}, []string{"certificatesigningrequests/approval"}, []string{"update"}),
					rule([]string{"certificates.k8s.io"}, []string{"signers"}, []string{"approve"}),
					rule([]string{""}, []string{"nodes/proxy"}, []string{"get", "create"}),
					rule([]string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations"}, []string{"create", "update"}),
					rule([]string{""}, []string{"serviceaccounts/token"}, []string{"create"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("system:node-helper", "system:node-helper", sub("ServiceAccount", "kube-system", "node-helper")))
			},
			want: []string{
				"RBAC-014 SERVICE_ACCOUNT kube-system/node-helper via system:node-helper system:node-helper",
				"RBAC-015 SERVICE_ACCOUNT kube-system/node-helper via system:node-helper system:node-helper",
				"RBAC-016 SERVICE_ACCOUNT kube-system/node-helper via system:node-helper system:node-helper",
				"RBAC-017 SERVICE_ACCOUNT kube-system/node-helper via system:node-helper system:node-helper",
			},
		},
		{
			name: "extra subject on a bootstrap binding",
			change: func(c *secureauditv1.SnapshotChunk) {
				for _, b := range c.ClusterRoleBindings {
					if b.GetMeta().GetName() == "cluster-admin" {
						b.Subjects = append(b.Subjects, sub("User", "", "mallory@example.com"))
					}
				}
			},
			want: []string{
				"RBAC-001 USER /mallory@example.com via cluster-admin cluster-admin",
				"RBAC-003 USER /mallory@example.com via cluster-admin cluster-admin",
				"RBAC-005 USER /mallory@example.com via cluster-admin cluster-admin",
				"RBAC-006 USER /mallory@example.com via cluster-admin cluster-admin",
				"RBAC-009 USER /mallory@example.com via cluster-admin cluster-admin",
			},
		},
		{
			name: "system:masters through another binding",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("masters-view", "view", sub("Group", "", "system:masters")))
			},
			want: []string{"RBAC-008 GROUP /system:masters via masters-view view"},
		},
		{
			name: "bootstrap binding pointed at another role",
			change: func(c *secureauditv1.SnapshotChunk) {
				for _, b := range c.ClusterRoleBindings {
					if b.GetMeta().GetName() == "system:basic-user" {
						b.RoleRef.Name = "cluster-admin"
					}
				}
			},
			want: []string{
				"RBAC-001 GROUP /system:authenticated via system:basic-user cluster-admin",
				"RBAC-003 GROUP /system:authenticated via system:basic-user cluster-admin",
				"RBAC-005 GROUP /system:authenticated via system:basic-user cluster-admin",
				"RBAC-006 GROUP /system:authenticated via system:basic-user cluster-admin",
				"RBAC-009 GROUP /system:authenticated via system:basic-user cluster-admin",
				"RBAC-034 GROUP /system:authenticated via system:basic-user cluster-admin",
			},
		},
		{
			name: "catalogued add-on as published",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("cloud-node-manager",
					rule([]string{""}, []string{"nodes"}, []string{"watch", "list", "get", "update", "patch"}),
					rule([]string{""}, []string{"nodes/status"}, []string{"patch"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("cloud-node-manager", "cloud-node-manager", sub("ServiceAccount", "kube-system", "cloud-node-manager")))
			},
		},
		{
			name: "catalogued add-on holding more than its entry",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("cloud-node-manager",
					rule([]string{""}, []string{"nodes"}, []string{"watch", "list", "get", "update", "patch"}),
					rule([]string{""}, []string{"nodes/status"}, []string{"patch"}),
					rule([]string{""}, []string{"secrets"}, []string{"get", "list"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("cloud-node-manager", "cloud-node-manager", sub("ServiceAccount", "kube-system", "cloud-node-manager")))
			},
			want: []string{
				"RBAC-003 SERVICE_ACCOUNT kube-system/cloud-node-manager via cloud-node-manager cloud-node-manager",
				"RBAC-026 SERVICE_ACCOUNT kube-system/cloud-node-manager via cloud-node-manager cloud-node-manager",
				"RBAC-035 UNSPECIFIED / via  cloud-node-manager",
			},
		},
		{
			name: "Retina holding more than its entry",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("retina-cluster-reader",
					rule([]string{""}, []string{"pods", "services", "replicationcontrollers", "nodes", "namespaces"}, []string{"get", "watch", "list"}),
					rule([]string{""}, []string{"pods/exec"}, []string{"create"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("retina-cluster-reader-binding", "retina-cluster-reader", sub("ServiceAccount", "kube-system", "retina-agent")))
			},
			want: []string{
				"RBAC-006 SERVICE_ACCOUNT kube-system/retina-agent via retina-cluster-reader-binding retina-cluster-reader",
				"RBAC-035 UNSPECIFIED / via  retina-cluster-reader",
			},
		},
		{
			// AKS publishes neither rules nor a manifest for aks-service, only
			// that it cannot modify permissions: a role that grants nothing
			// the rules judge is recognised.
			name: "aks-support with a read-only aks-service",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("aks-service", rule([]string{"", "apps"}, []string{"pods", "pods/log", "events", "deployments"}, []string{"get", "list", "watch"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("aks-service-rolebinding", "aks-service", sub("User", "", "aks-support")))
			},
		},
		{
			// The bundled example's aks-service: every verb on everything,
			// which is more than AKS documents for it.
			name: "aks-support with an aks-service granting everything",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("aks-service", rule([]string{"*"}, []string{"*"}, []string{"*"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("aks-service-rolebinding", "aks-service", sub("User", "", "aks-support")))
			},
			want: []string{
				"RBAC-001 USER /aks-support via aks-service-rolebinding aks-service",
				"RBAC-003 USER /aks-support via aks-service-rolebinding aks-service",
				"RBAC-005 USER /aks-support via aks-service-rolebinding aks-service",
				"RBAC-006 USER /aks-support via aks-service-rolebinding aks-service",
				"RBAC-009 USER /aks-support via aks-service-rolebinding aks-service",
				"RBAC-035 UNSPECIFIED / via  aks-service",
			},
		},
		{
			// Reading Secrets is not what AKS documents aks-service cannot
			// do: the grant is judged, the role is not RBAC-035.
			name: "aks-support with an aks-service reading Secrets",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("aks-service", rule([]string{""}, []string{"pods", "secrets"}, []string{"get", "list"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("aks-service-rolebinding", "aks-service", sub("User", "", "aks-support")))
			},
			want: []string{"RBAC-003 USER /aks-support via aks-service-rolebinding aks-service"},
		},
		{
			name: "aks-support with an aks-service writing RoleBindings",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles, cr("aks-service", rule([]string{"rbac.authorization.k8s.io"}, []string{"rolebindings"}, []string{"create", "patch"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings, crb("aks-service-rolebinding", "aks-service", sub("User", "", "aks-support")))
			},
			want: []string{
				"RBAC-035 UNSPECIFIED / via  aks-service",
				"RBAC-040 USER /aks-support via aks-service-rolebinding aks-service",
			},
		},
		{
			name: "catalogued subject bound by another name",
			change: func(c *secureauditv1.SnapshotChunk) {
				// The entry's own rule giving nodes/proxy.
				c.ClusterRoles = append(c.ClusterRoles, cr("ama-logs-reader", rule([]string{""}, []string{"pods", "nodes/proxy"}, []string{"list", "get", "watch"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings,
					crb("amalogsclusterrolebinding", "ama-logs-reader", sub("ServiceAccount", "kube-system", "ama-logs"), sub("ServiceAccount", "kube-system", "ama-logs-extra")),
					crb("ama-logs-admin", "cluster-admin", sub("ServiceAccount", "kube-system", "ama-logs")))
			},
			want: []string{
				"RBAC-001 SERVICE_ACCOUNT kube-system/ama-logs via ama-logs-admin cluster-admin",
				"RBAC-003 SERVICE_ACCOUNT kube-system/ama-logs via ama-logs-admin cluster-admin",
				"RBAC-005 SERVICE_ACCOUNT kube-system/ama-logs via ama-logs-admin cluster-admin",
				"RBAC-006 SERVICE_ACCOUNT kube-system/ama-logs via ama-logs-admin cluster-admin",
				"RBAC-009 SERVICE_ACCOUNT kube-system/ama-logs via ama-logs-admin cluster-admin",
				"RBAC-014 SERVICE_ACCOUNT kube-system/ama-logs-extra via amalogsclusterrolebinding ama-logs-reader",
			},
		},
		{
			name: "add-on ServiceAccount through an unknown binding",
			change: func(c *secureauditv1.SnapshotChunk) {
				c.ClusterRoles = append(c.ClusterRoles,
					cr("system:coredns", rule([]string{""}, []string{"endpoints", "services", "pods", "namespaces"}, []string{"list", "watch"})),
					cr("secret-reader", rule([]string{""}, []string{"secrets"}, []string{"get", "list"})))
				c.ClusterRoleBindings = append(c.ClusterRoleBindings,
					crb("system:coredns", "system:coredns", sub("ServiceAccount", "kube-system", "coredns")),
					crb("coredns-extra", "secret-reader", sub("ServiceAccount", "kube-system", "coredns")))
			},
			want: []string{"RBAC-003 SERVICE_ACCOUNT kube-system/coredns via coredns-extra secret-reader"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pristine(t)
			tt.change(c)
			got := mainFindings(evaluate(c))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("main findings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAddonCatalogue: every entry of the AKS add-on catalogue names its
// public source (repository, path, a 40-digit commit), and every binding
// names subjects of a known kind and a role the catalogue or the bootstrap
// policy defines.
func TestAddonCatalogue(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("addons", "aks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Version string `json:"version"`
		Addons  []struct {
			Name   string `json:"name"`
			Source struct {
				Repository, Path, Commit string
			} `json:"source"`
			ClusterRoles []struct{ Name string } `json:"clusterRoles"`
			Roles        []struct{ Namespace, Name string }
			Bindings     []struct {
				Kind, Namespace, Name string
				RoleRef               struct{ Kind, Name string }
				Subjects              []struct{ Kind, Namespace, Name string }
			} `json:"bindings"`
		} `json:"addons"`
	}
	if err := json.Unmarshal(data, &cat); err != nil {
		t.Fatal(err)
	}
	if cat.Version != rules.AddonCatalogueVersion() || len(cat.Addons) < 8 {
		t.Fatalf("catalogue version %q (embedded %q), %d add-ons", cat.Version, rules.AddonCatalogueVersion(), len(cat.Addons))
	}
	boot := pristine(t)
	known := map[string]bool{}
	for _, r := range boot.GetClusterRoles() {
		known["ClusterRole//"+r.GetMeta().GetName()] = true
	}
	for _, r := range boot.GetRoles() {
		known["Role/"+r.GetMeta().GetNamespace()+"/"+r.GetMeta().GetName()] = true
	}
	for _, a := range cat.Addons {
		for _, r := range a.ClusterRoles {
			known["ClusterRole//"+r.Name] = true
		}
		for _, r := range a.Roles {
			known["Role/"+r.Namespace+"/"+r.Name] = true
		}
	}
	commit := regexp.MustCompile(`^[0-9a-f]{40}$`)
	for _, a := range cat.Addons {
		if a.Source.Repository == "" || a.Source.Path == "" || !commit.MatchString(a.Source.Commit) || len(a.Bindings) == 0 {
			t.Errorf("add-on %q: source %+v, %d bindings", a.Name, a.Source, len(a.Bindings))
		}
		for _, b := range a.Bindings {
			ns := ""
			if b.RoleRef.Kind == "Role" {
				ns = b.Namespace
			}
			if !known[b.RoleRef.Kind+"/"+ns+"/"+b.RoleRef.Name] {
				t.Errorf("add-on %q binding %s references %s %s, which neither the catalogue nor the bootstrap policy defines", a.Name, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			}
			for _, s := range b.Subjects {
				if s.Kind != "User" && s.Kind != "Group" && (s.Kind != "ServiceAccount" || s.Namespace == "") {
					t.Errorf("add-on %q binding %s: subject %+v", a.Name, b.Name, s)
				}
			}
		}
	}
}

// TestAddonEntriesRecognised: each catalogue entry's own objects, exactly
// as recorded, are recognised as platform-managed with the entry as their
// source, and yield no main finding.
func TestAddonEntriesRecognised(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("addons", "aks.json"))
	if err != nil {
		t.Fatal(err)
	}
	type pr struct {
		APIGroups       []string `json:"apiGroups"`
		Resources       []string `json:"resources"`
		Verbs           []string `json:"verbs"`
		ResourceNames   []string `json:"resourceNames"`
		NonResourceURLs []string `json:"nonResourceURLs"`
	}
	var cat struct {
		Addons []struct {
			Name         string
			ClusterRoles []struct {
				Name  string
				Rules []pr
			} `json:"clusterRoles"`
			Roles []struct {
				Namespace, Name string
				Rules           []pr
			}
			Bindings []struct {
				Kind, Namespace, Name string
				RoleRef               struct{ Kind, Name string } `json:"roleRef"`
				Subjects              []struct{ Kind, Namespace, Name string }
			}
		}
	}
	if err := json.Unmarshal(data, &cat); err != nil {
		t.Fatal(err)
	}
	conv := func(rs []pr) []*secureauditv1.PolicyRule {
		var out []*secureauditv1.PolicyRule
		for _, r := range rs {
			out = append(out, &secureauditv1.PolicyRule{ApiGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs, ResourceNames: r.ResourceNames, NonResourceUrls: r.NonResourceURLs})
		}
		return out
	}
	for _, a := range cat.Addons {
		t.Run(a.Name, func(t *testing.T) {
			c := pristine(t)
			for _, r := range a.ClusterRoles {
				c.ClusterRoles = append(c.ClusterRoles, cr(r.Name, conv(r.Rules)...))
			}
			for _, r := range a.Roles {
				c.Roles = append(c.Roles, &secureauditv1.Role{Meta: &secureauditv1.ObjectMeta{Namespace: r.Namespace, Name: r.Name}, Rules: conv(r.Rules)})
			}
			var want []string
			for _, b := range a.Bindings {
				var subs []*secureauditv1.Subject
				for _, s := range b.Subjects {
					subs = append(subs, sub(s.Kind, s.Namespace, s.Name))
					want = append(want, b.Kind+" "+b.Name+" "+s.Namespace+"/"+s.Name+" aks:"+a.Name)
				}
				ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: b.RoleRef.Name}
				if b.RoleRef.Kind == "Role" {
					ref.Kind = secureauditv1.RoleKind_ROLE_KIND_ROLE
				}
				if b.Kind == "RoleBinding" {
					c.RoleBindings = append(c.RoleBindings, &secureauditv1.RoleBinding{Meta: &secureauditv1.ObjectMeta{Namespace: b.Namespace, Name: b.Name}, RoleRef: ref, Subjects: subs})
				} else {
					c.ClusterRoleBindings = append(c.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{Meta: &secureauditv1.ObjectMeta{Name: b.Name}, RoleRef: ref, Subjects: subs})
				}
			}
			s := snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil)
			if got := mainFindings(rules.Evaluate(s)); len(got) > 0 {
				t.Errorf("main findings:\n%s", strings.Join(got, "\n"))
			}
			var got []string
			for _, m := range rules.Analyze(s).ManagedGrants() {
				if strings.HasPrefix(m.GetSource(), "aks:") {
					kind := "ClusterRoleBinding"
					if m.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
						kind = "RoleBinding"
					}
					got = append(got, kind+" "+m.GetBinding().GetName()+" "+m.GetSubject().GetNamespace()+"/"+m.GetSubject().GetName()+" "+m.GetSource())
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("add-on grants recognised (-want +got):\n%s", diff)
			}
		})
	}
}
