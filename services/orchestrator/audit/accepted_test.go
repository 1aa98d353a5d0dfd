package audit

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestLateRenderLeavesAcceptedOut: a format rendered on request renders
// the stored findings as the audit's own render did, without the accepted
// risks (they are in the report's Accepted risks section), keeping
// platform-managed findings and findings with no acceptance.
func TestLateRenderLeavesAcceptedOut(t *testing.T) {
	kept := &secureauditv1.Finding{Id: "kept"}
	accepted := &secureauditv1.Finding{Id: "accepted"}
	infra := &secureauditv1.Finding{Id: "infra", Infrastructure: true}
	all := []*secureauditv1.Finding{kept, accepted, infra}
	if got := withoutAccepted(all, nil); len(got) != 3 {
		t.Errorf("no acceptance: %d findings, want all 3", len(got))
	}
	got := withoutAccepted(all, []*secureauditv1.AcceptedFinding{{Finding: accepted}, {Finding: &secureauditv1.Finding{Id: "infra"}}})
	var ids []string
	for _, f := range got {
		ids = append(ids, f.GetId())
	}
	if len(ids) != 2 || ids[0] != "kept" || ids[1] != "infra" {
		t.Errorf("late render findings %v, want [kept infra]", ids)
	}
}
