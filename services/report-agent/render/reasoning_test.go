package render

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestMarkdownLabelsModelOutput: model text appears beside its finding,
// labelled as model output, and the finding's own text is unchanged.
func TestMarkdownLabelsModelOutput(t *testing.T) {
	plain := sampleFindings()
	withModel := sampleFindings()
	f := withModel.GetFindings()[0]
	withModel.ReasoningProvider = "openai"
	withModel.Reasoning = &secureauditv1.Reasoning{
		Provider: "openai", Model: "gpt-test-1", TemplateVersion: "t1",
		ExecutiveSummary: "Model summary | with a pipe.", SummarySource: secureauditv1.TextSource_TEXT_SOURCE_MODEL,
		Annotations: []*secureauditv1.FindingAnnotation{{FindingId: f.GetId(), Explanation: "Model explanation ![x](https://evil.example/a?b=c).", FirstStep: "Ask the owner.", Source: secureauditv1.TextSource_TEXT_SOURCE_MODEL}},
		AccessReviews: []*secureauditv1.AccessReview{{
			Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "g1", DisplayName: "Payments"},
			Roles:   []string{"ClusterRole/view cluster-wide"}, Plausibility: secureauditv1.Plausibility_PLAUSIBILITY_QUESTIONABLE,
			Reason: "Model reason.", Source: secureauditv1.TextSource_TEXT_SOURCE_MODEL,
		}},
		Withheld: 1,
	}
	got := string(Markdown(withModel))
	for _, want := range []string{
		"**Model output** (model output (openai, gpt-test-1)",
		"**First step (model output):** Ask the owner.",
		"## Reasoning",
		"| group Payments (g1) |",
		"| questionable | Model reason. | model output |",
		"1 string from the cluster or directory looked like planted instructions",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(got, "![x](https://evil") {
		t.Errorf("model text rendered an unescaped image link")
	}
	if base := string(Markdown(plain)); strings.Contains(base, "Model output") || strings.Contains(base, "## Reasoning") {
		t.Errorf("a report without reasoning shows model output")
	}

	// The HTML shows the same note beside the finding, labelled and escaped.
	page, err := HTML(withModel)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`<div class="model-note"><p><strong>Model output</strong> (model output (openai, gpt-test-1); it annotates and never changes the finding)</p>`,
		"<strong>First step (model output):</strong> Ask the owner.",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, `src="https://evil`) || strings.Contains(html, `href="https://evil`) {
		t.Errorf("model text became a live image or link in the HTML")
	}
	plainPage, err := HTML(plain)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plainPage), `class="model-note"`) {
		t.Errorf("a report without reasoning shows a model note in the HTML")
	}
}

// TestTemplateReasoningDeterministic: with template reasoning (provider
// none) the same report renders to the same bytes.
func TestTemplateReasoningDeterministic(t *testing.T) {
	build := func() *secureauditv1.Report {
		r := sampleFindings()
		r.Reasoning = &secureauditv1.Reasoning{
			Provider: "none", TemplateVersion: "t1", ExecutiveSummary: "Template summary.",
			SummarySource: secureauditv1.TextSource_TEXT_SOURCE_TEMPLATE,
			AccessReviews: []*secureauditv1.AccessReview{{
				Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "alice@example.com"},
				Roles:   []string{"ClusterRole/edit in namespace web"}, Plausibility: secureauditv1.Plausibility_PLAUSIBILITY_NOT_ASSESSED,
				Reason: "Not assessed.", Source: secureauditv1.TextSource_TEXT_SOURCE_TEMPLATE,
			}},
		}
		return r
	}
	a, b := Markdown(build()), Markdown(build())
	if string(a) != string(b) {
		t.Error("the same report rendered to different Markdown")
	}
	if !strings.Contains(string(a), "**Summary** (template text (deterministic))") || strings.Contains(string(a), "Model output") {
		t.Error("template reasoning is not labelled as template text")
	}
}
