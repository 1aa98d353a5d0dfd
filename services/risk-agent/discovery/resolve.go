package discovery

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Resolved is a resource argument read as kubectl reads it.
type Resolved struct {
	Group       string
	Version     string // empty for "*" and the authorization-only resources
	Resource    string // plural, or "*"
	Subresource string
	// Namespaced is false for cluster-scoped resources: a request for them
	// never carries a namespace.
	Namespaced bool
}

// ErrUnknown marks a resource (or subresource) the table does not know.
var ErrUnknown = errors.New("unknown resource")

// ErrAmbiguous marks a resource name that several groups serve with the
// same priority.
var ErrAmbiguous = errors.New("ambiguous resource")

// authzOnly are the resources the API server authorizes but does not serve,
// so discovery never lists them: the targets of impersonation
// (k8s.io/apiserver's impersonation filter) and the certificate signers
// (the CSR approval and signing checks). kubectl auth can-i knows users and
// groups; it takes the others as core resources, which no rule grants.
var authzOnly = []struct {
	group, resource string
	anySubresource  bool // userextras/<extra key>
}{
	{"", "users", false},
	{"", "groups", false},
	{"authentication.k8s.io", "uids", false},
	{"authentication.k8s.io", "userextras", true},
	{"certificates.k8s.io", "signers", false},
}

// Resolve reads RESOURCE[/SUBRESOURCE] as kubectl auth can-i does: the
// resource part lowercased; "resource.version.group" when it has two dots
// or more and such a resource exists, else "resource.group" (a group prefix
// such as "storageclasses.storage" matches storage.k8s.io when no group is
// named exactly so); kubectl's short names (expanded unless a resource or
// singular name matches first) and singular names; "*" as is. A name in
// several groups resolves by discovery priority (the core group first, then
// the groups in discovery order), as kubectl's RESTMapper does. The
// subresource is everything after the first '/', and must be one the
// resource has.
//
// Unlike kubectl, which warns and asks the server about the unknown name in
// the core group, an unknown name is an error (wrapping ErrUnknown) that
// lists the nearest known names.
func (t *Table) Resolve(arg string) (Resolved, error) {
	res, sub, hasSub := strings.Cut(arg, "/")
	if hasSub && sub == "" {
		return Resolved{}, fmt.Errorf("%q: empty subresource after '/'", arg)
	}
	if res == "*" {
		return Resolved{Resource: "*", Subresource: sub, Namespaced: true}, nil
	}
	if res == "" {
		return Resolved{}, fmt.Errorf("%q: empty resource", arg)
	}
	lower := strings.ToLower(res)
	r, err := t.resourceArg(lower)
	if err != nil {
		for _, a := range authzOnly {
			if lower == a.resource || lower == a.resource+"."+a.group {
				if hasSub && !a.anySubresource {
					return Resolved{}, fmt.Errorf("%w: %s has no subresources", ErrUnknown, lower)
				}
				return Resolved{Group: a.group, Resource: a.resource, Subresource: sub}, nil
			}
		}
		return Resolved{}, err
	}
	if hasSub && !r.HasSubresource(sub) {
		msg := "none"
		if len(r.Subresources) > 0 {
			msg = strings.Join(r.Subresources, ", ")
		}
		return Resolved{}, fmt.Errorf("%w: %s has no subresource %q (its subresources: %s)", ErrUnknown, r.GroupResource(), sub, msg)
	}
	return Resolved{Group: r.Group, Version: r.Version, Resource: r.Name, Subresource: sub, Namespaced: r.Namespaced}, nil
}

// gvr is a partially specified group/version/resource.
type gvr struct{ group, version, resource string }

// resourceArg is kubectl's (k8s.io/kubectl auth can-i) resourceFor over
// schema.ParseResourceArg: the fully specified form first, when the
// argument has two dots or more, then the group/resource form.
func (t *Table) resourceArg(arg string) (Resource, error) {
	if strings.Count(arg, ".") >= 2 {
		s := strings.SplitN(arg, ".", 3)
		if r, err := t.resourceFor(gvr{resource: s[0], version: s[1], group: s[2]}); err == nil {
			return r, nil
		}
	}
	g := gvr{resource: arg}
	if i := strings.Index(arg, "."); i >= 0 {
		g = gvr{resource: arg[:i], group: arg[i+1:]}
	}
	return t.resourceFor(g)
}

// resourceFor is the shortcut expander over the priority RESTMapper
// (k8s.io/client-go restmapper, k8s.io/apimachinery meta).
func (t *Table) resourceFor(in gvr) (Resource, error) {
	q := t.expandShortcut(in)
	matches := t.resourcesFor(q)
	switch len(matches) {
	case 0:
		return Resource{}, t.unknown(in)
	case 1:
		return t.resources[matches[0]], nil
	}
	remaining := matches
	for _, p := range t.priority {
		var hit []int
		for _, i := range remaining {
			r := t.resources[i]
			if r.Group == p.group && (p.anyVersion || r.Version == p.version) {
				hit = append(hit, i)
			}
		}
		switch len(hit) {
		case 0:
			continue
		case 1:
			return t.resources[hit[0]], nil
		}
		remaining = hit
	}
	var names []string
	for _, i := range matches {
		r := t.resources[i]
		names = append(names, r.Name+"."+r.Version+"."+r.Group)
	}
	return Resource{}, fmt.Errorf("%w: %s matches %s", ErrAmbiguous, in.resource, strings.Join(names, ", "))
}

// expandShortcut is restmapper's shortcutExpander.expandResourceShortcut:
// no expansion when a resource or singular name (in the named group, if
// any) matches exactly; else the first short name of the named group (or
// any group), which drops the version; else, with a group, the first short
// name of a group the named one is a prefix of.
func (t *Table) expandShortcut(in gvr) gvr {
	for _, r := range t.resources {
		if in.group != "" && in.group != r.Group {
			continue
		}
		if in.resource == r.Name || in.resource == r.SingularName {
			return in
		}
	}
	for _, r := range t.resources {
		if in.group != "" && in.group != r.Group {
			continue
		}
		if slices.Contains(r.ShortNames, in.resource) {
			return gvr{group: r.Group, resource: r.Name}
		}
	}
	if in.group == "" {
		return in
	}
	for _, r := range t.resources {
		if strings.HasPrefix(r.Group, in.group) && slices.Contains(r.ShortNames, in.resource) {
			return gvr{group: r.Group, version: in.version, resource: r.Name}
		}
	}
	return in
}

// resourcesFor is a MultiRESTMapper of one DefaultRESTMapper per group
// version: the indexes of the resources matching by plural or singular name
// (the singular guessed from the kind when discovery has none), with a group
// prefix match inside a group version that has no exact match.
func (t *Table) resourcesFor(q gvr) []int {
	var out []int
	add := func(i int) {
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	named := func(r Resource) bool { return q.resource == r.Name || q.resource == singular(r) }
	// Group the resources by group version, keeping discovery order.
	var gvs [][]int
	idx := map[[2]string]int{}
	for i, r := range t.resources {
		k := [2]string{r.Group, r.Version}
		j, ok := idx[k]
		if !ok {
			j = len(gvs)
			idx[k] = j
			gvs = append(gvs, nil)
		}
		gvs[j] = append(gvs[j], i)
	}
	for _, members := range gvs {
		switch {
		case q.group != "" && q.version != "":
			for _, i := range members {
				r := t.resources[i]
				if r.Group == q.group && r.Version == q.version && named(r) {
					add(i)
				}
			}
		case q.version != "":
			for _, i := range members {
				if r := t.resources[i]; r.Version == q.version && named(r) {
					add(i)
				}
			}
		case q.group != "":
			exact := false
			for _, i := range members {
				if r := t.resources[i]; r.Group == q.group && named(r) {
					exact = true
					add(i)
				}
			}
			if !exact {
				for _, i := range members {
					if r := t.resources[i]; strings.HasPrefix(r.Group, q.group) && named(r) {
						add(i)
					}
				}
			}
		default:
			for _, i := range members {
				if named(t.resources[i]) {
					add(i)
				}
			}
		}
	}
	return out
}

// singular is the resource's singular name, guessed from its kind when
// discovery has none (meta.UnsafeGuessKindToResource's singular).
func singular(r Resource) string {
	if r.SingularName != "" {
		return r.SingularName
	}
	return strings.ToLower(r.Kind)
}

// unknown returns the error for a name no resource has, listing the known
// names nearest to it by edit distance.
func (t *Table) unknown(in gvr) error {
	q := in.resource
	if in.group != "" {
		q += "." + in.group
	}
	type cand struct {
		name   string
		d      int
		prefix bool // a known form starts with the name given
	}
	best := map[string]cand{}
	consider := func(gr, form string) {
		c := cand{gr, distance(q, form), len(q) >= 3 && strings.HasPrefix(form, q)}
		if old, ok := best[gr]; !ok || c.d < old.d {
			c.prefix = c.prefix || ok && old.prefix
			best[gr] = c
		} else if c.prefix {
			old.prefix = true
			best[gr] = old
		}
	}
	for _, r := range t.resources {
		gr := r.GroupResource()
		forms := []string{r.Name, singular(r)}
		forms = append(forms, r.ShortNames...)
		if in.group != "" {
			forms = []string{gr, singular(r) + "." + r.Group}
			for _, s := range r.ShortNames {
				forms = append(forms, s+"."+r.Group)
			}
		}
		for _, f := range forms {
			consider(gr, f)
		}
	}
	// A typo is a few edits away; a prefix is a name cut short.
	limit := max(1, min(3, len(q)/3))
	var cs []cand
	for _, c := range best {
		if c.d <= limit || c.prefix {
			cs = append(cs, c)
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.name, b.name)) })
	if len(cs) > 5 {
		cs = cs[:5]
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w %q (no resource of that name or a near one)", ErrUnknown, q)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.name)
	}
	return fmt.Errorf("%w %q; did you mean %s?", ErrUnknown, q, strings.Join(names, ", "))
}

// distance is the Levenshtein distance between a and b, by bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
