// Package entry groups an audit's rule hits into the reviewer's entries:
// one entry per risky grant (subject, binding, role, scope), holding every
// rule hit of that grant, the hits that only amplify it (a token
// automounted, running pods holding the token), and the narrower grants of
// the same subject that a broader grant already gives. It works from the
// findings alone and is pure: the same findings give the same entries, and
// every finding belongs to exactly one entry.
package entry

import (
	"fmt"
	"slices"
	"sort"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Amplifiers are the rules whose hits only amplify a grant of the same
// subject (its token is automounted, running pods hold it): they join the
// entry of that grant rather than standing alone.
var Amplifiers = []string{"RBAC-012", "RBAC-039"}

// clusterAdmin is the rule whose hit makes a grant cover every other
// grant of the same subject.
const clusterAdmin = "RBAC-001"

// Grant is the hits of one grant, by its grant key.
type Grant struct {
	Key  string
	Hits []*secureauditv1.Finding
}

// Lead is the grant's most severe hit, the first in order among equals.
func (g Grant) Lead() *secureauditv1.Finding { return lead(g.Hits) }

// Entry is one item of the reviewer's list.
type Entry struct {
	// Grant is the entry's own grant: the lead hit and the others of the
	// same grant key.
	Grant Grant
	// Amplified are amplifier hits of other grant keys of the same subject
	// (an automounted token reported against another binding).
	Amplified []*secureauditv1.Finding
	// Narrower are grants of the same subject that this entry's grant
	// already gives more broadly (cluster-wide, or as cluster-admin).
	Narrower []Grant
}

// Lead is the hit the entry is shown by.
func (e Entry) Lead() *secureauditv1.Finding { return e.Grant.Lead() }

// Hits are every rule hit the entry holds: its own, the amplifiers joined
// to it, then the narrower grants'.
func (e Entry) Hits() []*secureauditv1.Finding {
	out := append([]*secureauditv1.Finding(nil), e.Grant.Hits...)
	out = append(out, e.Amplified...)
	for _, g := range e.Narrower {
		out = append(out, g.Hits...)
	}
	return out
}

// Severity is the worst severity of the entry's hits.
func (e Entry) Severity() secureauditv1.Severity {
	return lead(e.Hits()).GetSeverity()
}

// Informational reports whether the entry holds only informational hits
// (INFO: a component reading named Secrets of its own namespace, a role
// adding writes only on result records to admin) of Kubernetes RBAC rules
// about a ServiceAccount or a role alone. Such an entry is not one of the reviewer's list: its
// hits stay in report.json and SARIF and count in compliance status like
// any other, and the report lists them briefly apart. An entry about a
// person or group is never informational: the access review lists every
// grant of theirs.
func (e Entry) Informational() bool {
	if e.Severity() != secureauditv1.Severity_SEVERITY_INFO {
		return false
	}
	for _, f := range e.Hits() {
		// A finding stored before families existed has none: RBAC.
		if fam := f.GetFamily(); fam != secureauditv1.RuleFamily_RULE_FAMILY_RBAC && fam != secureauditv1.RuleFamily_RULE_FAMILY_UNSPECIFIED {
			return false
		}
	}
	switch e.Lead().GetSubject().GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER, secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return false
	}
	return true
}

// Split separates entries into the reviewer's list and the informational
// ones (Entry.Informational), each in the order given.
func Split(entries []Entry) (main, informational []Entry) {
	for _, e := range entries {
		if e.Informational() {
			informational = append(informational, e)
		} else {
			main = append(main, e)
		}
	}
	return main, informational
}

// Key returns a finding's grant key: the risk-agent's, or for a finding
// without one (a report stored before the field existed) the same
// identity spelled out.
func Key(f *secureauditv1.Finding) string {
	if k := f.GetGrantKey(); k != "" {
		return k
	}
	s, b, r, sc := f.GetSubject(), f.GetBinding(), f.GetRole(), f.GetScope()
	return fmt.Sprintf("%d/%s/%s|%d/%s/%s|%d/%s/%s|%d/%s", s.GetKind(), s.GetNamespace(), s.GetName(),
		b.GetKind(), b.GetNamespace(), b.GetName(), r.GetKind(), r.GetNamespace(), r.GetName(),
		sc.GetLevel(), sc.GetNamespace())
}

// subjectKey identifies a finding's subject; "" for a finding about a role
// alone.
func subjectKey(f *secureauditv1.Finding) string {
	s := f.GetSubject()
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s/%s", s.GetKind(), s.GetNamespace(), s.GetName())
}

// Amplifier reports whether a rule only amplifies a grant.
func Amplifier(ruleID string) bool { return slices.Contains(Amplifiers, ruleID) }

// Group returns the entries of findings, most severe first; at equal
// severity cluster-wide before namespaced, then by namespace, then in the
// findings' order. Every finding is in exactly one entry.
//
//  1. Hits with the same grant key form a grant.
//  2. A grant whose hits are all amplifiers joins the subject's most severe
//     other grant, when the subject has one.
//  3. A grant of a subject that another grant of the same subject covers is
//     folded under it: the cover is cluster-wide (or in the same
//     namespace) and is cluster-admin, or holds every rule of the narrower
//     grant at the same severity or worse, except rules the narrower grant
//     adds at LOW or below (a ConfigMap write, a delete in its namespace),
//     which are listed in the entry as added (Entry.Adds) and do not
//     warrant an entry of their own (so a grant of LOW rules alone folds
//     under the subject's broader grant).
func Group(findings []*secureauditv1.Finding) []Entry {
	var grants []*Grant
	byKey := map[string]*Grant{}
	for _, f := range findings {
		k := Key(f)
		g, ok := byKey[k]
		if !ok {
			g = &Grant{Key: k}
			byKey[k] = g
			grants = append(grants, g)
		}
		g.Hits = append(g.Hits, f)
	}
	entries := make([]*Entry, len(grants))
	for i, g := range grants {
		entries[i] = &Entry{Grant: *g}
	}
	bySubject := map[string][]*Entry{}
	for _, e := range entries {
		if sk := subjectKey(e.Lead()); sk != "" {
			bySubject[sk] = append(bySubject[sk], e)
		}
	}
	gone := map[*Entry]bool{}
	// 2. Amplifier-only grants join the subject's worst other grant.
	for _, e := range entries {
		if !amplifiersOnly(e.Grant.Hits) {
			continue
		}
		var to *Entry
		for _, o := range bySubject[subjectKey(e.Lead())] {
			if o == e || gone[o] || amplifiersOnly(o.Grant.Hits) {
				continue
			}
			if to == nil || before(o.Lead(), to.Lead()) {
				to = o
			}
		}
		if to != nil {
			to.Amplified = append(to.Amplified, e.Grant.Hits...)
			gone[e] = true
		}
	}
	// 3. Narrower grants fold under a grant that covers them, broadest
	// first so a chain folds into its top.
	for _, sk := range sortedKeys(bySubject) {
		es := slices.DeleteFunc(slices.Clone(bySubject[sk]), func(e *Entry) bool { return gone[e] })
		sort.SliceStable(es, func(i, j int) bool { return broader(es[i], es[j]) })
		for i, e := range es {
			if gone[e] {
				continue
			}
			for _, b := range es[:i] {
				if gone[b] || !covers(b, e) {
					continue
				}
				b.Narrower = append(b.Narrower, e.Grant)
				b.Narrower = append(b.Narrower, e.Narrower...)
				b.Amplified = append(b.Amplified, e.Amplified...)
				gone[e] = true
				break
			}
		}
	}
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if !gone[e] {
			out = append(out, *e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Severity() != b.Severity() {
			return a.Severity() < b.Severity()
		}
		la, lb := a.Lead().GetScope(), b.Lead().GetScope()
		if la.GetLevel() != lb.GetLevel() {
			return la.GetLevel() < lb.GetLevel()
		}
		return la.GetNamespace() < lb.GetNamespace()
	})
	return out
}

// lead is the most severe of hits, the first among equals.
func lead(hits []*secureauditv1.Finding) *secureauditv1.Finding {
	var top *secureauditv1.Finding
	for _, f := range hits {
		if top == nil || before(f, top) {
			top = f
		}
	}
	return top
}

// before orders hits by severity (a defined severity's number is smaller
// the more severe it is); among equals, a proven hit before a conditional
// path, and the grant's own rules before amplifiers.
func before(a, b *secureauditv1.Finding) bool {
	if a.GetSeverity() != b.GetSeverity() {
		return a.GetSeverity() < b.GetSeverity()
	}
	if a.GetConditional() != b.GetConditional() {
		return !a.GetConditional()
	}
	return !Amplifier(a.GetRuleId()) && Amplifier(b.GetRuleId())
}

func amplifiersOnly(hits []*secureauditv1.Finding) bool {
	for _, f := range hits {
		if !Amplifier(f.GetRuleId()) {
			return false
		}
	}
	return true
}

// ruleSeverities maps each non-amplifier rule of a grant, and each rule
// folded into one of its hits, to its worst severity in the grant; with
// proven, only what is proven (a conditional path is left out).
func ruleSeverities(hits []*secureauditv1.Finding, proven bool) map[string]secureauditv1.Severity {
	out := map[string]secureauditv1.Severity{}
	note := func(id string, s secureauditv1.Severity) {
		if old, ok := out[id]; !ok || s < old {
			out[id] = s
		}
	}
	for _, f := range hits {
		if Amplifier(f.GetRuleId()) || (proven && f.GetConditional()) {
			continue
		}
		note(f.GetRuleId(), f.GetSeverity())
		for _, h := range f.GetFolded() {
			note(h.GetRuleId(), f.GetSeverity())
		}
	}
	return out
}

// covers reports whether grant b already gives the subject what grant e
// gives: b reaches at least e's scope and is cluster-admin, or holds each
// of e's proven rules at the same severity or worse (a conditional path of
// e, whose first step b's same rules give too, does not keep it apart).
func covers(b, e *Entry) bool {
	bs, es := b.Lead().GetScope(), e.Lead().GetScope()
	wider := bs.GetLevel() == secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER ||
		(bs.GetLevel() == es.GetLevel() && bs.GetNamespace() == es.GetNamespace())
	if !wider {
		return false
	}
	br := ruleSeverities(b.Grant.Hits, false)
	er := ruleSeverities(e.Grant.Hits, true)
	if len(er) == 0 {
		return false
	}
	if _, ok := br[clusterAdmin]; ok {
		return true
	}
	for id, s := range er {
		if bsev, ok := br[id]; (!ok || bsev > s) && !minor(s) {
			return false
		}
	}
	return true
}

// minor reports whether a severity is LOW or below: a rule a narrower
// grant adds at such a severity does not keep it apart from a cover.
func minor(s secureauditv1.Severity) bool {
	return s >= secureauditv1.Severity_SEVERITY_LOW
}

// Adds reports whether f, a hit of one of the entry's narrower grants,
// gives what the entry's own grant does not: a proven hit of a rule the
// own grant lacks or rates less severe (only ever LOW or below, see
// Group), unless the own grant is cluster-admin. Amplifiers and
// conditional paths add nothing.
func (e Entry) Adds(f *secureauditv1.Finding) bool {
	if Amplifier(f.GetRuleId()) || f.GetConditional() {
		return false
	}
	own := ruleSeverities(e.Grant.Hits, false)
	if _, ok := own[clusterAdmin]; ok {
		return false
	}
	s, ok := own[f.GetRuleId()]
	return !ok || s > f.GetSeverity()
}

// broader orders a subject's grants so that a cover comes before what it
// covers: cluster-admin first, then cluster-wide, then more rules, then
// more severe, then the original order.
func broader(a, b *Entry) bool {
	ar, br := ruleSeverities(a.Grant.Hits, false), ruleSeverities(b.Grant.Hits, false)
	_, aa := ar[clusterAdmin]
	_, ba := br[clusterAdmin]
	if aa != ba {
		return aa
	}
	al, bl := a.Lead().GetScope().GetLevel(), b.Lead().GetScope().GetLevel()
	if al != bl {
		return al < bl
	}
	if len(ar) != len(br) {
		return len(ar) > len(br)
	}
	return a.Lead().GetSeverity() < b.Lead().GetSeverity()
}

func sortedKeys(m map[string][]*Entry) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
