// Package discovery knows the resources an API server serves: their API
// groups, versions, scopes, subresources, singular names and kubectl's short
// names. A Table comes from a live snapshot's discovery (built-in resources,
// CustomResourceDefinitions and aggregated APIs, as the rbac-agent collected
// them) or, when a snapshot has none (manifests, kubectl dumps), from the
// built-in resources of the kube-apiserver version the project tests against,
// captured from the real server by test/kube (builtin.json, see README.md).
//
// Resolve reads a resource argument as kubectl does (kubectl auth can-i: its
// RESTMapper with the shortcut expander over discovery), without importing
// any Kubernetes package.
package discovery

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Resource is one resource of one API group version.
type Resource struct {
	Group        string   `json:"group"`
	Version      string   `json:"version"`
	Name         string   `json:"name"` // plural, such as deployments
	SingularName string   `json:"singularName,omitempty"`
	Kind         string   `json:"kind"`
	Namespaced   bool     `json:"namespaced"`
	ShortNames   []string `json:"shortNames,omitempty"`
	Subresources []string `json:"subresources,omitempty"`
	// PreferredVersion is true when Version is the group's preferred version.
	PreferredVersion bool `json:"preferredVersion,omitempty"`
}

// GroupResource renders the resource as kubectl prints it: "pods",
// "deployments.apps".
func (r Resource) GroupResource() string {
	if r.Group == "" {
		return r.Name
	}
	return r.Name + "." + r.Group
}

// HasSubresource reports whether sub is one of the resource's subresources.
func (r Resource) HasSubresource(sub string) bool { return slices.Contains(r.Subresources, sub) }

// Table is the resources of one API server, in discovery order (the order
// decides between resources of the same name in several groups, as it does
// for kubectl). It is immutable and safe for concurrent use.
type Table struct {
	resources []Resource
	// byGR indexes the first (preferred) entry of each group/resource.
	byGR map[groupResource]int
	// priority is the RESTMapper's resource priority: core v1, then each
	// group's preferred version and its other versions, then each group in
	// any version.
	priority []gv
}

type groupResource struct{ group, resource string }

type gv struct {
	group, version string
	anyVersion     bool
}

// New returns a table of resources given in discovery order.
func New(resources []Resource) *Table {
	t := &Table{resources: slices.Clone(resources), byGR: map[groupResource]int{}}
	var groups []string
	versions := map[string][]string{}
	preferred := map[string]string{}
	for i, r := range t.resources {
		if _, ok := versions[r.Group]; !ok {
			groups = append(groups, r.Group)
		}
		if !slices.Contains(versions[r.Group], r.Version) {
			versions[r.Group] = append(versions[r.Group], r.Version)
		}
		if r.PreferredVersion {
			preferred[r.Group] = r.Version
		}
		k := groupResource{r.Group, r.Name}
		if j, ok := t.byGR[k]; !ok || r.PreferredVersion && !t.resources[j].PreferredVersion {
			t.byGR[k] = i
		}
	}
	// k8s.io/client-go restmapper.NewDiscoveryRESTMapper: /v1 always first.
	t.priority = append(t.priority, gv{group: "", version: "v1"})
	for _, g := range groups {
		if p, ok := preferred[g]; ok {
			t.priority = append(t.priority, gv{group: g, version: p})
		}
		for _, v := range versions[g] {
			if v != preferred[g] {
				t.priority = append(t.priority, gv{group: g, version: v})
			}
		}
	}
	for _, g := range groups {
		t.priority = append(t.priority, gv{group: g, anyVersion: true})
	}
	return t
}

// Resources returns the table's resources in discovery order.
func (t *Table) Resources() []Resource { return slices.Clone(t.resources) }

// Lookup returns the resource named by its plural name in group, in the
// group's preferred version when it is served in several.
func (t *Table) Lookup(group, resource string) (Resource, bool) {
	i, ok := t.byGR[groupResource{group, resource}]
	if !ok {
		return Resource{}, false
	}
	return t.resources[i], true
}

//go:embed builtin.json
var builtinJSON []byte

// Captured is the file format of builtin.json.
type Captured struct {
	// Source says where and how the resources were captured.
	Source string `json:"source"`
	// ServerVersion is the git version of the API server they came from.
	ServerVersion string     `json:"serverVersion"`
	Resources     []Resource `json:"resources"`
}

var builtin = sync.OnceValue(func() *Table {
	var c Captured
	if err := json.Unmarshal(builtinJSON, &c); err != nil {
		panic(fmt.Sprintf("discovery: embedded builtin.json: %v", err)) // a build defect, caught by the tests
	}
	return New(c.Resources)
})

// BuiltinVersion is the kube-apiserver version whose resources Builtin
// returns.
func BuiltinVersion() string {
	var c struct {
		ServerVersion string `json:"serverVersion"`
	}
	_ = json.Unmarshal(builtinJSON, &c)
	return c.ServerVersion
}

// Builtin returns the built-in resources of kube-apiserver BuiltinVersion
// with its default feature gates, captured from the real server.
func Builtin() *Table { return builtin() }

// FromProto returns the table of a snapshot's discovery, or nil when it has
// none.
func FromProto(rs []*secureauditv1.APIResource) *Table {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Resource, 0, len(rs))
	for _, r := range rs {
		out = append(out, Resource{
			Group:            r.GetGroup(),
			Version:          r.GetVersion(),
			Name:             r.GetName(),
			SingularName:     r.GetSingularName(),
			Kind:             r.GetKind(),
			Namespaced:       r.GetNamespaced(),
			ShortNames:       slices.Clone(r.GetShortNames()),
			Subresources:     slices.Clone(r.GetSubresources()),
			PreferredVersion: r.GetPreferredVersion(),
		})
	}
	return New(out)
}

// ToProto converts resources to the snapshot contract's form.
func ToProto(rs []Resource) []*secureauditv1.APIResource {
	out := make([]*secureauditv1.APIResource, 0, len(rs))
	for _, r := range rs {
		out = append(out, &secureauditv1.APIResource{
			Group:            r.Group,
			Version:          r.Version,
			Name:             r.Name,
			SingularName:     r.SingularName,
			Kind:             r.Kind,
			Namespaced:       r.Namespaced,
			ShortNames:       slices.Clone(r.ShortNames),
			Subresources:     slices.Clone(r.Subresources),
			PreferredVersion: r.PreferredVersion,
		})
	}
	return out
}

// For returns the table a snapshot's requests are read with: the header's
// discovery when the snapshot was collected live, else Builtin.
func For(h *secureauditv1.SnapshotHeader) *Table {
	if t := FromProto(h.GetApiResources()); t != nil {
		return t
	}
	return Builtin()
}
