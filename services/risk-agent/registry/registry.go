// Package registry is the risk-agent's one rule registry: every rule of every
// family (RBAC, identity, escalation path, prompt injection) with its stable
// ID, family, title, base severity, the controls it maps to and their titles,
// its rationale, its remediation and its fixture directory; and the one
// finding builder (Rule.Finding) every family makes its findings with, so
// that each finding carries the rule's family, title and control titles and
// the report needs no table of its own. docs/rules.md is generated from it
// (package rulesdoc).
//
// A new rule is one entry in the table of its family (rbac.go, identity.go,
// path.go, inject.go) and a fixture directory,
// services/risk-agent/<package>/testdata/rules/<ID>/, with its exact
// expected findings; a test fails until both exist.
package registry

import (
	"cmp"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Version identifies the rule catalogue; it changes whenever a rule's
// semantics, severity or text changes.
const Version = "2026.12.5"

// Family is a rule's family: what it judges.
type Family = secureauditv1.RuleFamily

// The families.
const (
	RBAC      = secureauditv1.RuleFamily_RULE_FAMILY_RBAC
	Identity  = secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
	Path      = secureauditv1.RuleFamily_RULE_FAMILY_PATH
	Injection = secureauditv1.RuleFamily_RULE_FAMILY_INJECTION
	AKS       = secureauditv1.RuleFamily_RULE_FAMILY_AKS
)

// packages are the risk-agent packages that evaluate each family; a rule's
// fixture directory is in its family's package.
var packages = map[Family]string{
	RBAC:      "rules",
	Identity:  "identity",
	Path:      "paths",
	Injection: "inject",
	AKS:       "aks",
}

// Rule describes one rule.
type Rule struct {
	// ID is the stable rule ID, such as RBAC-003.
	ID string
	// Family is what the rule judges; set from the table the rule is in.
	Family Family
	// Title is a one-line name for the finding.
	Title string
	// Severity is the base severity before escalation.
	Severity secureauditv1.Severity
	// Rationale says why the pattern matters.
	Rationale string
	// Controls are the control IDs the rule maps to (CIS-..., SOC2-...);
	// each has a title in ControlTitles.
	Controls []string
	// Remediation is the general advice; findings add the exact command.
	Remediation string
}

// Package is the risk-agent package that evaluates the rule, such as rules.
func (r Rule) Package() string { return packages[r.Family] }

// Fixture is the rule's fixture directory, relative to services/risk-agent:
// positives and near misses and the exact expected findings.
func (r Rule) Fixture() string {
	return r.Package() + "/testdata/rules/" + r.ID
}

// FamilyName names a family in prose, such as RBAC or identity.
func FamilyName(f Family) string {
	switch f {
	case RBAC:
		return "RBAC"
	case Identity:
		return "identity (Entra ID)"
	case Path:
		return "escalation path"
	case Injection:
		return "prompt injection"
	case AKS:
		return "AKS configuration"
	}
	return "unknown"
}

const (
	critical = secureauditv1.Severity_SEVERITY_CRITICAL
	high     = secureauditv1.Severity_SEVERITY_HIGH
	medium   = secureauditv1.Severity_SEVERITY_MEDIUM
	low      = secureauditv1.Severity_SEVERITY_LOW
	info     = secureauditv1.Severity_SEVERITY_INFO
)

// all is every rule, ordered by family then ID.
var all = func() []Rule {
	var out []Rule
	for _, t := range []struct {
		family Family
		rules  []Rule
	}{{RBAC, rbacRules}, {Path, pathRules}, {Identity, identityRules}, {Injection, injectRules}, {AKS, aksRules}} {
		rs := slices.Clone(t.rules)
		for i := range rs {
			rs[i].Family = t.family
		}
		slices.SortFunc(rs, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, rs...)
	}
	return out
}()

// byID indexes all.
var byID = func() map[string]int {
	m := make(map[string]int, len(all))
	for i, r := range all {
		if _, dup := m[r.ID]; dup {
			panic("registry: duplicate rule " + r.ID)
		}
		m[r.ID] = i
	}
	return m
}()

// All returns every rule, RBAC first, then PATH, ENTRA and INJ, each by ID.
// The result is a copy.
func All() []Rule {
	out := make([]Rule, len(all))
	for i, r := range all {
		out[i] = r.clone()
	}
	return out
}

// Of returns the rules of one family, by ID. The result is a copy.
func Of(f Family) []Rule {
	var out []Rule
	for _, r := range all {
		if r.Family == f {
			out = append(out, r.clone())
		}
	}
	return out
}

// Lookup returns the rule of an ID. Its Controls are the registry's own,
// shared by every caller: read them, never modify them (the rules look
// rules up for every grant they judge, so Lookup does not copy).
func Lookup(id string) (Rule, bool) {
	i, ok := byID[id]
	if !ok {
		return Rule{}, false
	}
	return all[i], true
}

// MustLookup returns the rule of an ID, as Lookup does, and panics when
// there is none: rule IDs are constants of the code, so an unknown one is a
// programming error (register the rule in this package).
func MustLookup(id string) Rule {
	r, ok := Lookup(id)
	if !ok {
		panic("registry: unknown rule " + id + " (add it to the table of its family in services/risk-agent/registry)")
	}
	return r
}

func (r Rule) clone() Rule {
	r.Controls = slices.Clone(r.Controls)
	return r
}

// Controls returns every control a rule maps to, with its title, ordered CIS
// before SOC 2 and numerically: the controls an audit states a compliance
// status for.
func Controls() []*secureauditv1.ControlTitle {
	seen := map[string]bool{}
	var ids []string
	for _, r := range all {
		for _, c := range r.Controls {
			if !seen[c] {
				seen[c] = true
				ids = append(ids, c)
			}
		}
	}
	slices.SortFunc(ids, CompareControls)
	out := make([]*secureauditv1.ControlTitle, len(ids))
	for i, id := range ids {
		out[i] = &secureauditv1.ControlTitle{Id: id, Title: controlTitles[id]}
	}
	return out
}

// ControlsWithout returns Controls without those that only rules of family
// f map to: the controls assessed when f's rules could not run (the AKS
// controls, when the audit read no AKS cluster).
func ControlsWithout(f Family) []*secureauditv1.ControlTitle {
	other := map[string]bool{}
	for _, r := range all {
		if r.Family != f {
			for _, c := range r.Controls {
				other[c] = true
			}
		}
	}
	var out []*secureauditv1.ControlTitle
	for _, c := range Controls() {
		if other[c.GetId()] {
			out = append(out, c)
		}
	}
	return out
}

// ControlTitle returns a control's title, or "" for a control no rule maps
// to.
func ControlTitle(id string) string { return controlTitles[id] }

// CompareControls orders control IDs CIS before SOC 2, and numbered parts
// numerically (CIS-5.1.2 before CIS-5.1.10).
func CompareControls(a, b string) int {
	pa, pb := strings.FieldsFunc(a, splitControl), strings.FieldsFunc(b, splitControl)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := number(pa[i])
		nb, eb := number(pb[i])
		if ea && eb && na != nb {
			return cmp.Compare(na, nb)
		}
		return strings.Compare(pa[i], pb[i])
	}
	return cmp.Compare(len(pa), len(pb))
}

func splitControl(r rune) bool { return r == '-' || r == '.' }

// number parses a part made of digits only.
func number(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e6 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, s != ""
}
