package render

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// sourceLabel names who wrote a piece of reasoning text. Model text is
// always labelled as model output.
func sourceLabel(r *secureauditv1.Reasoning, s secureauditv1.TextSource) string {
	if s == secureauditv1.TextSource_TEXT_SOURCE_MODEL {
		model := r.GetModel()
		if model == "" {
			model = "unknown model"
		}
		return fmt.Sprintf("model output (%s, %s); it annotates and never changes the finding", r.GetProvider(), model)
	}
	return "template text (deterministic)"
}

// modelNote is the reasoning step's explanation of one finding.
type modelNote struct {
	Label       string
	Explanation string
	FirstStep   string
}

// writeNote writes the model's explanation of a finding beside it, when
// the reasoning step produced one.
func writeNote(b textWriter, f *findingView) {
	if n := f.Note; n != nil {
		fmt.Fprintf(b, "\n> **Model output** (%s)\n>\n> %s\n>\n> **First step (model output):** %s\n",
			md(n.Label), md(n.Explanation), md(n.FirstStep))
	}
}

// writeReasoning writes the reasoning step's executive summary and its
// access-review judgements, each labelled with who wrote it.
func writeReasoning(b textWriter, v view) {
	r := v.Reasoning
	if r == nil {
		return
	}
	b.WriteString("## Reasoning\n\n")
	fmt.Fprintf(b, "Provider: %s; prompt templates %s. ", md(r.GetProvider()), md(r.GetTemplateVersion()))
	if r.GetWithheld() > 0 {
		fmt.Fprintf(b, "%d %s from the cluster or directory looked like planted instructions and never reached a model. ",
			r.GetWithheld(), plural(int(r.GetWithheld()), "string", "strings"))
	}
	if r.GetDiscarded() > 0 {
		fmt.Fprintf(b, "%d model %s failed the output checks and %s replaced by template text. ",
			r.GetDiscarded(), plural(int(r.GetDiscarded()), "answer", "answers"), plural(int(r.GetDiscarded()), "was", "were"))
	}
	fmt.Fprintf(b, "\n\n**Summary** (%s)\n\n> %s\n\n", md(sourceLabel(r, r.GetSummarySource())), md(r.GetExecutiveSummary()))
	if len(r.GetAccessReviews()) == 0 {
		return
	}
	b.WriteString("**Is the access plausible?**\n\n| Subject | Roles | Judgement | Reason | Written by |\n|---|---|---|---|---|\n")
	for _, a := range r.GetAccessReviews() {
		who := "template"
		if a.GetSource() == secureauditv1.TextSource_TEXT_SOURCE_MODEL {
			who = "model output"
		}
		subject := a.GetSubject().GetName()
		if dn := a.GetSubject().GetDisplayName(); dn != "" {
			subject = dn + " (" + subject + ")"
		}
		fmt.Fprintf(b, "| %s %s | %s | %s | %s | %s |\n",
			strings.ToLower(strings.TrimPrefix(a.GetSubject().GetKind().String(), "SUBJECT_KIND_")), md(subject),
			mdList(a.GetRoles(), "none"), strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(a.GetPlausibility().String(), "PLAUSIBILITY_"), "_", " ")),
			md(a.GetReason()), who)
	}
	b.WriteString("\n")
}
