package registry

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Hit is what a rule family knows about one hit of a rule; Rule.Finding
// makes the finding from it and the registry.
type Hit struct {
	// ID is the finding's fingerprint (16 hex digits), computed by the
	// family from the rule and the objects involved.
	ID string
	// Severity is the finding's severity; zero means the rule's base.
	Severity secureauditv1.Severity
	// SeverityReason says how the severity was reached; "" means "base
	// <severity>".
	SeverityReason string
	// Scope is where the grant applies.
	Scope *secureauditv1.Scope
	// Detail is appended to the rule's rationale to make the description.
	Detail string
	// Description replaces the rationale and Detail when set (a finding
	// whose text is its own, such as an injection's).
	Description string
	// Command is the exact command, appended to the rule's remediation.
	Command string
	// Remediation replaces the rule's remediation and Command when set.
	Remediation string
	// Folded are the IDs of other rules the same grant triggers that the
	// finding stands for (Finding.folded).
	Folded []string
}

// Finding is the one finding builder: it makes the finding of a hit of r,
// with the rule's ID, family and title, the severity (the base unless the
// hit says otherwise) and its reason, the rule's controls and those of the
// folded rules with their titles, the description (rationale and detail)
// and the remediation (advice and command), each within the contract's
// limits. The family fills in the references to the subject, binding and
// role, and anything else it knows.
func (r Rule) Finding(h Hit) *secureauditv1.Finding {
	sev := h.Severity
	if sev == secureauditv1.Severity_SEVERITY_UNSPECIFIED {
		sev = r.Severity
	}
	reason := h.SeverityReason
	if reason == "" {
		reason = "base " + strings.TrimPrefix(sev.String(), "SEVERITY_")
	}
	desc := h.Description
	if desc == "" {
		desc = r.Rationale
		if h.Detail != "" {
			desc += " " + h.Detail
		}
	}
	fix := h.Remediation
	if fix == "" {
		fix = r.Remediation
		if h.Command != "" {
			fix += " Command: " + h.Command
		}
	}
	f := &secureauditv1.Finding{
		Id:             h.ID,
		RuleId:         r.ID,
		Family:         r.Family,
		Title:          r.Title,
		Severity:       sev,
		SeverityReason: Clip(reason, 1024),
		Scope:          h.Scope,
		Controls:       slices.Clone(r.Controls),
		Description:    Clip(desc, 4096),
		Remediation:    Clip(fix, 4096),
	}
	if len(h.Folded) > 0 {
		folded := slices.Sorted(slices.Values(h.Folded))
		f.Folded = make([]*secureauditv1.FoldedHit, len(folded))
		for i, id := range folded {
			f.Folded[i] = &secureauditv1.FoldedHit{RuleId: id, Controls: slices.Clone(MustLookup(id).Controls)}
		}
	}
	f.ControlTitles = Titles(f)
	return f
}

// Titles returns the titles of the controls a finding bears on: one per ID
// of its controls and of its folded hits' controls, in that order, each once.
// A control no rule maps to has no title and is left out.
func Titles(f *secureauditv1.Finding) []*secureauditv1.ControlTitle {
	n := len(f.GetControls())
	for _, h := range f.GetFolded() {
		n += len(h.GetControls())
	}
	// A finding bears on a handful of controls: a linear search beats a map.
	out := make([]*secureauditv1.ControlTitle, 0, n)
	add := func(ids []string) {
		for _, id := range ids {
			t := controlTitles[id]
			if t == "" || slices.ContainsFunc(out, func(c *secureauditv1.ControlTitle) bool { return c.GetId() == id }) {
				continue
			}
			out = append(out, &secureauditv1.ControlTitle{Id: id, Title: t})
		}
	}
	add(f.GetControls())
	for _, h := range f.GetFolded() {
		add(h.GetControls())
	}
	return out
}

// Clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Check reports whether a finding carries what the registry says of its
// rule: the family, the title, the rule's controls, folded hits with their
// rules' controls, and the control titles. Tests of every family run it on
// every finding of every fixture.
func Check(f *secureauditv1.Finding) error {
	r, ok := Lookup(f.GetRuleId())
	if !ok {
		return fmt.Errorf("finding %s: rule %s is not registered", f.GetId(), f.GetRuleId())
	}
	switch {
	case f.GetFamily() != r.Family:
		return fmt.Errorf("finding %s (%s): family %v, registry says %v", f.GetId(), r.ID, f.GetFamily(), r.Family)
	case f.GetTitle() != r.Title:
		return fmt.Errorf("finding %s (%s): title %q, registry says %q", f.GetId(), r.ID, f.GetTitle(), r.Title)
	case !slices.Equal(f.GetControls(), r.Controls):
		return fmt.Errorf("finding %s (%s): controls %v, registry says %v", f.GetId(), r.ID, f.GetControls(), r.Controls)
	}
	for _, h := range f.GetFolded() {
		fr, ok := Lookup(h.GetRuleId())
		if !ok || !slices.Equal(h.GetControls(), fr.Controls) {
			return fmt.Errorf("finding %s (%s): folded hit %s with controls %v does not match the registry", f.GetId(), r.ID, h.GetRuleId(), h.GetControls())
		}
	}
	want := Titles(f)
	got := f.GetControlTitles()
	if len(got) != len(want) {
		return fmt.Errorf("finding %s (%s): %d control titles, want %d", f.GetId(), r.ID, len(got), len(want))
	}
	for i := range want {
		if got[i].GetId() != want[i].GetId() || got[i].GetTitle() != want[i].GetTitle() {
			return fmt.Errorf("finding %s (%s): control title %d is %s %q, want %s %q", f.GetId(), r.ID, i, got[i].GetId(), got[i].GetTitle(), want[i].GetId(), want[i].GetTitle())
		}
	}
	return nil
}
