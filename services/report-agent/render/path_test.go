package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestFindingPath(t *testing.T) {
	tests := []struct {
		name string
		desc string
		want []string
	}{
		{"none", "cluster-admin grants every verb.", nil},
		{"one step", "The subject is not cluster-admin. Path (1 steps): 1. User a --[can impersonate system:masters (via X)]--> cluster-admin.",
			[]string{"User a \u2014[can impersonate system:masters (via X)]\u2192 cluster-admin"}},
		{"three steps", "Why. Path (3 steps): 1. SA d/b --[reads secrets; all of them]--> any ServiceAccount; 2. any ServiceAccount --[includes]--> SA ci/g; 3. SA ci/g --[holds *]--> cluster-admin.",
			[]string{"SA d/b \u2014[reads secrets; all of them]\u2192 any ServiceAccount", "any ServiceAccount \u2014[includes]\u2192 SA ci/g", "SA ci/g \u2014[holds *]\u2192 cluster-admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findingPath(&secureauditv1.Finding{Description: tt.desc})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findingPath (-want +got):\n%s", diff)
			}
		})
	}
}

// A structured path is rendered from its steps, whatever the description says.
func TestFindingPathStructured(t *testing.T) {
	f := &secureauditv1.Finding{
		Description: "Path (1 steps): 1. User x --[stale text]--> cluster-admin.",
		Path: []*secureauditv1.PathStep{
			{From: "ServiceAccount ci/deployer", Capability: "creates pods in ci with any ServiceAccount",
				Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Name: "deployer", Namespace: "ci"},
				Role:    &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: "pods", Namespace: "ci"},
				To:      "any ServiceAccount of namespace ci"},
			{From: "any ServiceAccount of namespace ci", Capability: "includes", To: "ServiceAccount ci/admin"},
		},
	}
	want := []string{
		"ServiceAccount ci/deployer \u2014[creates pods in ci with any ServiceAccount (via " + bindingText(f.Path[0].Binding) + ", " + roleText(f.Path[0].Role) + ")]\u2192 any ServiceAccount of namespace ci",
		"any ServiceAccount of namespace ci \u2014[includes]\u2192 ServiceAccount ci/admin",
	}
	if diff := cmp.Diff(want, findingPath(f)); diff != "" {
		t.Errorf("findingPath (-want +got):\n%s", diff)
	}
}
