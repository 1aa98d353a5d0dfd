package access

import (
	"cmp"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Permission is one thing a subject may do. For a resource permission,
// Resource and Subresource are the rule's resource split at the first '/'
// ("pods/exec" is pods and exec; "*/scale" is any resource's scale); a
// Resource of "*" without a Subresource covers every resource and
// subresource. ResourceName is empty when the rule names no objects.
// Namespace is empty when the permission holds in every namespace and for
// cluster-scoped objects (a ClusterRoleBinding), and the RoleBinding's
// namespace otherwise. A non-resource permission has NonResourceURL set and
// nothing else but Verb.
type Permission struct {
	Verb           string
	APIGroup       string
	Resource       string
	Subresource    string
	ResourceName   string
	Namespace      string
	NonResourceURL string
}

// Grant is a permission and every binding that grants it.
type Grant struct {
	Permission
	Bindings []Binding
}

func comparePermissions(a, b Permission) int {
	return cmp.Or(
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.NonResourceURL, b.NonResourceURL),
		cmp.Compare(a.APIGroup, b.APIGroup),
		cmp.Compare(a.Resource, b.Resource),
		cmp.Compare(a.Subresource, b.Subresource),
		cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.Verb, b.Verb),
	)
}

// Permissions returns the effective permissions of id: every
// (verb, API group, resource, subresource, namespace, resource name) and
// non-resource (verb, URL) that some rule bound to id grants, each with the
// bindings that grant it, sorted by namespace (cluster-wide first), then
// non-resource URL, group, resource, subresource, name and verb.
// Non-resource rules reached through a RoleBinding grant nothing (requests
// for non-resource URLs have no namespace) and are left out. The
// unconditional access of system:masters is not listed; see Allowed.
func (e *Engine) Permissions(id Identity) []Grant {
	grants := map[Permission][]Binding{}
	add := func(p Permission, b Binding) {
		l := grants[p]
		if !slices.Contains(l, b) {
			grants[p] = append(l, b)
		}
	}
	for _, b := range e.bindingsOf(id) {
		if b.rules == nil {
			continue
		}
		ns := b.ref.Namespace
		for _, r := range b.rules.rules {
			for _, verb := range r.GetVerbs() {
				if ns == "" {
					for _, u := range r.GetNonResourceUrls() {
						add(Permission{Verb: verb, NonResourceURL: u}, b.ref)
					}
				}
				for _, p := range resourcePermissions(r, verb, ns) {
					add(p, b.ref)
				}
			}
		}
	}
	out := make([]Grant, 0, len(grants))
	for p, bs := range grants {
		slices.SortFunc(bs, compareBindings)
		out = append(out, Grant{Permission: p, Bindings: bs})
	}
	slices.SortFunc(out, func(a, b Grant) int { return comparePermissions(a.Permission, b.Permission) })
	return out
}

func resourcePermissions(r *secureauditv1.PolicyRule, verb, ns string) []Permission {
	names := r.GetResourceNames()
	if len(names) == 0 {
		names = []string{""}
	}
	var out []Permission
	for _, g := range r.GetApiGroups() {
		for _, res := range r.GetResources() {
			resource, sub, _ := strings.Cut(res, "/")
			for _, n := range names {
				out = append(out, Permission{
					Verb: verb, APIGroup: g, Resource: resource, Subresource: sub,
					ResourceName: n, Namespace: ns,
				})
			}
		}
	}
	return out
}
