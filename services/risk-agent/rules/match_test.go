package rules

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/discovery"
)

// TestAllows pins the matcher to the RBAC authorizer's semantics
// (k8s.io/component-helpers/auth/rbac): '*' and "*/<subresource>" are
// wildcards, "<resource>/*" is not; resourceNames cannot restrict create or
// deletecollection.
func TestAllows(t *testing.T) {
	rule := func(verbs, groups, resources, names []string) *secureauditv1.PolicyRule {
		return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: groups, Resources: resources, ResourceNames: names}
	}
	s := func(v ...string) []string { return v }
	exec := target{verb: "create", resource: "pods/exec"}
	tests := []struct {
		name string
		rule *secureauditv1.PolicyRule
		t    target
		want bool
	}{
		{"exact subresource", rule(s("create"), s(""), s("pods/exec"), nil), exec, true},
		{"star resource", rule(s("create"), s(""), s("*"), nil), exec, true},
		{"star subresource", rule(s("create"), s(""), s("*/exec"), nil), exec, true},
		{"resource slash star is literal", rule(s("create"), s(""), s("pods/*"), nil), exec, false},
		{"parent resource does not grant subresource", rule(s("create"), s(""), s("pods"), nil), exec, false},
		{"star subresource needs a subresource", rule(s("create"), s(""), s("*/exec"), nil), target{verb: "create", resource: "pods"}, false},
		{"other subresource", rule(s("create"), s(""), s("*/attach"), nil), exec, false},
		{"star verb", rule(s("*"), s(""), s("pods/exec"), nil), exec, true},
		{"wrong group", rule(s("create"), s("apps"), s("pods/exec"), nil), exec, false},
		{"star group", rule(s("create"), s("*"), s("pods/exec"), nil), exec, true},
		{"named create of subresource", rule(s("create"), s(""), s("pods/exec"), s("web-0")), exec, true},
		{"named create of object", rule(s("create"), s(""), s("pods"), s("web-0")), target{verb: "create", resource: "pods"}, false},
		{"named deletecollection", rule(s("deletecollection"), s(""), s("events"), s("e")), target{verb: "deletecollection", resource: "events"}, false},
		{"named get", rule(s("get"), s(""), s("secrets"), s("one")), target{verb: "get", resource: "secrets"}, true},
		{"userextras key", rule(s("impersonate"), s(authnGroup), s("userextras/scopes"), nil), target{verb: "impersonate", group: authnGroup, resource: "userextras", prefix: true}, true},
		{"userextras slash star is literal", rule(s("impersonate"), s(authnGroup), s("userextras/*"), nil), target{verb: "impersonate", group: authnGroup, resource: "userextras", prefix: true}, false},
		{"userextras star", rule(s("impersonate"), s(authnGroup), s("*"), nil), target{verb: "impersonate", group: authnGroup, resource: "userextras", prefix: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allows(tt.rule, tt.t); got != tt.want {
				t.Errorf("allows(%v, %v) = %v, want %v", tt.rule, tt.t, got, tt.want)
			}
		})
	}
}

// TestNamespacedNeverGrantsClusterScoped: a Role or a RoleBinding never
// grants cluster-scoped resources, whatever its rules say.
func TestNamespacedNeverGrantsClusterScoped(t *testing.T) {
	all := []*secureauditv1.PolicyRule{{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}}}
	p := newProfile(all, true, true)
	for c := range numCaps {
		for _, tg := range p.caps[c].found {
			if tg.clusterOnly {
				t.Errorf("capability %d: namespaced profile grants cluster-scoped %v", c, tg)
			}
		}
	}
	for _, c := range []Capability{CapPVCreate, CapNodesProxy, CapCSRApproval, CapSignersApprove, CapWebhookWrite, CapCRDWrite, CapNodeWrite, CapEscalateClusterRoles, CapImpersonateUsers, CapImpersonateGroups, CapCreateClusterRoleBindings} {
		if p.caps[c].ok() {
			t.Errorf("capability %d granted in a namespace", c)
		}
		if !newProfile(all, false, true).caps[c].ok() {
			t.Errorf("capability %d not granted cluster-wide by '*'", c)
		}
	}
}

// TestFindingIDStable pins the fingerprint: reports, baselines and diffs
// across versions depend on it (value from the example's approved output).
func TestFindingIDStable(t *testing.T) {
	got := FindingID("RBAC-001",
		&secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: "github-deployer-cluster-admin"},
		&secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: "ci", Name: "github-deployer"},
		&secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"})
	if want := "42b0ac4ee8d4d6d7"; got != want {
		t.Errorf("FindingID = %s, want %s", got, want)
	}
}

// TestTargetsMatchDiscovery checks every capability target against the
// built-in resources captured from the API server (services/risk-agent/
// discovery): a built-in group's resource exists in that group, its
// subresource exists, and the target is cluster-only exactly when the
// resource is cluster-scoped (bind on clusterroles excepted: a RoleBinding
// to a ClusterRole needs it in the namespace; and a Namespace object, which
// a request names as its own namespace). Resources the API server
// authorizes without serving them, and the groups of add-ons, are named.
func TestTargetsMatchDiscovery(t *testing.T) {
	tbl := discovery.Builtin()
	builtinGroups := map[string]bool{}
	for _, r := range tbl.Resources() {
		builtinGroups[r.Group] = true
	}
	authzOnly := map[string]bool{"/users": true, "/groups": true, authnGroup + "/uids": true, authnGroup + "/userextras": true, certGroup + "/signers": true}
	for c := range numCaps {
		for _, tg := range capTargets[c] {
			res, sub, _ := strings.Cut(tg.resource, "/")
			r, ok := tbl.Lookup(tg.group, res)
			switch {
			case authzOnly[tg.group+"/"+res]:
				if !tg.clusterOnly {
					t.Errorf("capability %d: %v: impersonation and signer targets are cluster-wide", c, tg)
				}
				continue
			case !ok && builtinGroups[tg.group]:
				t.Errorf("capability %d: %v: no resource %q in built-in group %q", c, tg, res, tg.group)
				continue
			case !ok:
				continue // an add-on's group (kyverno.io, gateway.networking.k8s.io, ...)
			}
			if sub != "" && !r.HasSubresource(sub) {
				t.Errorf("capability %d: %v: %s has no subresource %q", c, tg, r.GroupResource(), sub)
			}
			// A request on a Namespace object carries the namespace's own
			// name as its namespace (k8s.io/apiserver RequestInfoFactory), so
			// a RoleBinding grants it on its own namespace.
			namespaceObject := tg.group == "" && res == "namespaces"
			wantClusterOnly := !r.Namespaced && tg.verb != "bind" && !namespaceObject
			if tg.clusterOnly != wantClusterOnly {
				t.Errorf("capability %d: %v: clusterOnly = %v, but %s is namespaced=%v", c, tg, tg.clusterOnly, r.GroupResource(), r.Namespaced)
			}
		}
	}
}
