package rules

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// inertJSON is the declared table of custom resources that only record
// results (policy reports): no controller acts on them with its rights,
// so writing them grants nothing beyond the record. RBAC-036 reports an
// aggregation whose only extra writes are on them as an informational hit.
// Extend it by adding an entry with its public source.
//
//go:embed inert.json
var inertJSON []byte

// InertResource is one entry of the table.
type InertResource struct {
	Group     string   `json:"group"`
	Resources []string `json:"resources"`
	What      string   `json:"what"`
	Source    string   `json:"source"`
}

type inertTable struct {
	Version   string          `json:"version"`
	Resources []InertResource `json:"resources"`
}

// inert parses the embedded table once; a parse error is a build defect,
// caught by the package's tests.
var inert = sync.OnceValue(func() inertTable {
	var t inertTable
	if err := json.Unmarshal(inertJSON, &t); err != nil {
		panic("rules: embedded inert.json: " + err.Error())
	}
	return t
})

// InertResources returns the declared table of result-only custom
// resources and its version.
func InertResources() (string, []InertResource) {
	t := inert()
	return t.Version, slices.Clone(t.Resources)
}

// isInert reports whether resource (or its subresource) of group is in
// the table. A wildcard group or resource is never inert.
func isInert(group, resource string) bool {
	if group == "*" || resource == "*" {
		return false
	}
	base, _, _ := strings.Cut(resource, "/")
	for _, e := range inert().Resources {
		if e.Group == group && slices.Contains(e.Resources, base) {
			return true
		}
	}
	return false
}

// inertText names the table's entries that rules write, for people:
// "wgpolicyk8s.io policyreports, clusterpolicyreports: policy reports
// (source URL)".
func inertText(rules []*secureauditv1.PolicyRule) string {
	var parts []string
	for _, e := range inert().Resources {
		hit := slices.ContainsFunc(rules, func(r *secureauditv1.PolicyRule) bool {
			return slices.Contains(r.GetApiGroups(), e.Group) && slices.ContainsFunc(r.GetResources(), func(res string) bool {
				base, _, _ := strings.Cut(res, "/")
				return slices.Contains(e.Resources, base)
			})
		})
		if hit {
			parts = append(parts, e.Group+" "+strings.Join(e.Resources, ", ")+": "+e.What+" ("+e.Source+")")
		}
	}
	return strings.Join(parts, "; ")
}
