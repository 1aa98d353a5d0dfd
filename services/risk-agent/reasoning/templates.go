package reasoning

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// templates returns the deterministic reasoning: what provider "none"
// reports, and what stands wherever a model answer is missing or discarded.
// Findings keep their catalogue description and remediation; subjects are
// marked as not assessed; the executive summary is built from the counts.
// The same input always gives the same text.
func templates(in Input) *secureauditv1.Reasoning {
	r := &secureauditv1.Reasoning{
		Provider:         ProviderNone,
		TemplateVersion:  TemplateVersion,
		ExecutiveSummary: summaryTemplate(in),
		SummarySource:    secureauditv1.TextSource_TEXT_SOURCE_TEMPLATE,
	}
	perSubject := map[string]int{}
	for _, f := range in.Findings {
		if s := f.GetSubject(); s != nil {
			perSubject[s.GetKind().String()+"/"+s.GetName()]++
		}
	}
	for _, s := range in.Subjects {
		n := perSubject[s.Ref.GetKind().String()+"/"+s.Ref.GetName()]
		reason := fmt.Sprintf("Not assessed: no reasoning provider judged this subject. A reviewer should confirm it needs %s.", grantPhrase(s.Roles))
		if n > 0 {
			reason += fmt.Sprintf(" %d finding(s) concern it.", n)
		}
		r.AccessReviews = append(r.AccessReviews, &secureauditv1.AccessReview{
			Subject:      s.Ref,
			Roles:        s.Roles,
			Plausibility: secureauditv1.Plausibility_PLAUSIBILITY_NOT_ASSESSED,
			Reason:       bounded(reason, 600),
			Source:       secureauditv1.TextSource_TEXT_SOURCE_TEMPLATE,
		})
	}
	return r
}

func grantPhrase(roles []string) string {
	switch len(roles) {
	case 0:
		return "its access"
	case 1:
		return roles[0]
	case 2:
		return roles[0] + " and " + roles[1]
	}
	return fmt.Sprintf("%s and %d other grants", roles[0], len(roles)-1)
}

func summaryTemplate(in Input) string {
	var b strings.Builder
	main, infra, injections := 0, 0, 0
	sev := map[secureauditv1.Severity]int{}
	for _, f := range in.Findings {
		if f.GetInfrastructure() {
			infra++
			continue
		}
		main++
		sev[f.GetSeverity()]++
		if f.GetFamily() == secureauditv1.RuleFamily_RULE_FAMILY_INJECTION {
			injections++
		}
	}
	fmt.Fprintf(&b, "The audit found %d findings (%d critical, %d high, %d medium, %d low, %d informational), and %d more on platform-managed identities in the appendix. ",
		main, sev[secureauditv1.Severity_SEVERITY_CRITICAL], sev[secureauditv1.Severity_SEVERITY_HIGH],
		sev[secureauditv1.Severity_SEVERITY_MEDIUM], sev[secureauditv1.Severity_SEVERITY_LOW], sev[secureauditv1.Severity_SEVERITY_INFO], infra)
	fmt.Fprintf(&b, "%d users and groups hold access through direct bindings and are listed for access review. ", len(in.Subjects))
	if c := sev[secureauditv1.Severity_SEVERITY_CRITICAL]; c > 0 {
		fmt.Fprintf(&b, "Start with the %d critical findings: each gives control of the cluster or a namespace. ", c)
	}
	if injections > 0 {
		fmt.Fprintf(&b, "%d findings report text in cluster or directory data that looks written to steer an AI reviewer; it was kept out of every prompt, and who wrote it should be investigated. ", injections)
	}
	b.WriteString("This summary was generated from templates, without a language model.")
	return bounded(b.String(), 4000)
}
