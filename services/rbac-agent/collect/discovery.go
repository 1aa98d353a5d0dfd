package collect

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Discoverer is implemented by an API whose discovery the live source reads
// into the snapshot header (kubeclient.Client does): the API groups with
// their preferred versions and the resource lists of every group version, in
// discovery order. partial is true when some groups could not be read (an
// aggregated API that is down); the lists then hold the others.
type Discoverer interface {
	Discovery(ctx context.Context) (groups []*metav1.APIGroup, lists []*metav1.APIResourceList, partial bool, err error)
}

// Limits of the header's discovery, within the contract's.
const (
	maxAPIResources = 10000
	maxAPINames     = 64  // short names, subresources per resource
	maxAPINameLen   = 253 // group, resource, kind and short names
	maxVersionLen   = 63
)

// ConvertDiscovery turns discovery into the snapshot contract's resources,
// in discovery order, with each resource's subresources folded in. Entries
// beyond the contract's limits (which no real API server reaches) are
// dropped, and truncated reports that something was: an odd aggregated API
// never fails the collection.
func ConvertDiscovery(groups []*metav1.APIGroup, lists []*metav1.APIResourceList) (out []*secureauditv1.APIResource, truncated bool) {
	preferred := map[string]string{}
	for _, g := range groups {
		if g != nil {
			preferred[g.Name] = g.PreferredVersion.Version
		}
	}
	for _, l := range ordered(groups, lists) {
		if l == nil {
			continue
		}
		group, version, ok := strings.Cut(l.GroupVersion, "/")
		if !ok {
			group, version = "", l.GroupVersion // the core group, "v1"
		}
		if version == "" || len(version) > maxVersionLen || len(group) > maxAPINameLen {
			truncated = true
			continue
		}
		byName := map[string]*secureauditv1.APIResource{}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if r.Name == "" || len(r.Name) > maxAPINameLen || len(out) >= maxAPIResources {
				truncated = true
				continue
			}
			a := &secureauditv1.APIResource{
				Group:            group,
				Version:          version,
				Name:             r.Name,
				SingularName:     dropLong(r.SingularName),
				Kind:             dropLong(r.Kind),
				Namespaced:       r.Namespaced,
				PreferredVersion: preferred[group] == version,
			}
			for _, s := range r.ShortNames {
				if s == "" || len(s) > maxAPINameLen || len(a.ShortNames) >= maxAPINames {
					truncated = true
					continue
				}
				a.ShortNames = append(a.ShortNames, s)
			}
			byName[r.Name] = a
			out = append(out, a)
		}
		for _, r := range l.APIResources {
			parent, sub, ok := strings.Cut(r.Name, "/")
			if !ok {
				continue
			}
			a := byName[parent]
			if a == nil || sub == "" || len(sub) > maxAPINameLen || len(a.Subresources) >= maxAPINames {
				truncated = true
				continue
			}
			a.Subresources = append(a.Subresources, sub)
		}
	}
	return out, truncated
}

// ordered returns lists in discovery order: the groups' order and each
// group's versions' order (client-go returns aggregated discovery's lists in
// map order), then any list of a version no group names, by name. The core
// group comes first, as the API server serves it (/api before /apis), even
// when a client lists the groups in another order.
func ordered(groups []*metav1.APIGroup, lists []*metav1.APIResourceList) []*metav1.APIResourceList {
	groups = slices.Clone(groups)
	slices.SortStableFunc(groups, func(a, b *metav1.APIGroup) int {
		return cmp.Compare(groupRank(a), groupRank(b))
	})
	byGV := map[string]*metav1.APIResourceList{}
	for _, l := range lists {
		if l != nil {
			byGV[l.GroupVersion] = l
		}
	}
	var out []*metav1.APIResourceList
	for _, g := range groups {
		if g == nil {
			continue
		}
		for _, v := range g.Versions {
			if l, ok := byGV[v.GroupVersion]; ok {
				out = append(out, l)
				delete(byGV, v.GroupVersion)
			}
		}
	}
	rest := slices.Sorted(maps.Keys(byGV))
	for _, gv := range rest {
		out = append(out, byGV[gv])
	}
	return out
}

// groupRank puts the core group (named "") before every other.
func groupRank(g *metav1.APIGroup) int {
	if g != nil && g.Name == "" {
		return 0
	}
	return 1
}

// dropLong drops a name longer than the contract allows: it only helps to read
// requests, and a resource without it is still known by its plural.
func dropLong(s string) string {
	if len(s) > maxAPINameLen {
		return ""
	}
	return s
}
