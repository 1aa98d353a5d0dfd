package render

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestPlausibilityNote(t *testing.T) {
	r := sampleReport()
	group := r.GetAccessReview()[1].GetSubject()
	judge := func(p secureauditv1.Plausibility, src secureauditv1.TextSource) *secureauditv1.Reasoning {
		return &secureauditv1.Reasoning{Provider: "openai", Model: "m1", AccessReviews: []*secureauditv1.AccessReview{
			{Subject: &secureauditv1.SubjectRef{Kind: group.GetKind(), Name: group.GetName()}, Plausibility: p, Reason: "admins of the platform", Source: src},
		}}
	}
	tests := []struct {
		name      string
		reasoning *secureauditv1.Reasoning
		want      string
	}{
		{"none", nil, ""},
		{"model", judge(secureauditv1.Plausibility_PLAUSIBILITY_PLAUSIBLE, secureauditv1.TextSource_TEXT_SOURCE_MODEL),
			"plausible: admins of the platform (model output (openai, m1); it annotates and never changes the finding)"},
		{"not assessed", judge(secureauditv1.Plausibility_PLAUSIBILITY_NOT_ASSESSED, secureauditv1.TextSource_TEXT_SOURCE_MODEL), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.Reasoning = tt.reasoning
			if got := plausibilityNote(r, r.GetAccessReview()[1]); got != tt.want {
				t.Errorf("plausibilityNote = %q, want %q", got, tt.want)
			}
		})
	}
}
