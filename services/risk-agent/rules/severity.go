package rules

import (
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// ladder computes a severity from a rule's base, one named step at a time,
// and records each step for severity_reason. Steps are applied in a fixed
// order (reductions, then scope, then subject kind, then chains) and the
// result is kept between CRITICAL and INFO at every step.
type ladder struct {
	sev   secureauditv1.Severity
	steps []string
	first [1]string // steps' first backing array: most ladders never climb
}

func newLadder(base secureauditv1.Severity, why string) *ladder {
	l := &ladder{sev: base}
	l.first[0] = "base " + sevName(base) + " (" + why + ")"
	l.steps = l.first[:]
	return l
}

// up raises by one level.
func (l *ladder) up(why string) {
	if l.sev == secureauditv1.Severity_SEVERITY_CRITICAL {
		l.steps = append(l.steps, why+": +1 -> CRITICAL (capped)")
		return
	}
	l.sev--
	l.steps = append(l.steps, why+": +1 -> "+sevName(l.sev))
}

// down lowers by one level.
func (l *ladder) down(why string) {
	if l.sev < secureauditv1.Severity_SEVERITY_INFO {
		l.sev++
	}
	l.steps = append(l.steps, why+": -1 -> "+sevName(l.sev))
}

// atLeast raises to min when below it.
func (l *ladder) atLeast(min secureauditv1.Severity, why string) {
	if l.sev > min {
		l.sev = min
		l.steps = append(l.steps, why+": at least "+sevName(min)+" -> "+sevName(l.sev))
		return
	}
	l.steps = append(l.steps, why+": at least "+sevName(min)+" (already "+sevName(l.sev)+")")
}

// atMost lowers to max when above it.
func (l *ladder) atMost(max secureauditv1.Severity, why string) {
	if l.sev < max {
		l.sev = max
		l.steps = append(l.steps, why+": at most "+sevName(max)+" -> "+sevName(l.sev))
	}
}

func (l *ladder) reason() string { return strings.Join(l.steps, "; ") }

func sevName(s secureauditv1.Severity) string {
	return strings.TrimPrefix(s.String(), "SEVERITY_")
}
