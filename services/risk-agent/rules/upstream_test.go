package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestUpstreamEffective checks the aggregation resolved among the bootstrap
// roles: admin, edit and view carry no rules of their own upstream and get
// those of system:aggregate-to-admin, -edit and -view as the aggregation
// controller fills them in (edit aggregates view, admin aggregates edit).
func TestUpstreamEffective(t *testing.T) {
	own := func(name string) []string {
		t.Helper()
		rules, ok := upstream(name)
		if !ok {
			t.Fatalf("%s is not in the bootstrap policy", name)
		}
		var out []string
		for _, r := range rules {
			out = append(out, r.String())
		}
		return out
	}
	union := func(names ...string) []string {
		var out []string
		for _, n := range names {
			for _, r := range own(n) {
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
		return out
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }
	for name, parts := range map[string][]string{
		"view":  {"system:aggregate-to-view"},
		"edit":  {"system:aggregate-to-edit", "system:aggregate-to-view"},
		"admin": {"system:aggregate-to-admin", "system:aggregate-to-edit", "system:aggregate-to-view"},
	} {
		if diff := cmp.Diff(sorted(union(parts...)), sorted(own(name))); diff != "" {
			t.Errorf("upstream %s (-%v +effective):\n%s", name, parts, diff)
		}
	}
	wantParts := map[string][]string{
		"system:aggregate-to-admin": {"admin"},
		"system:aggregate-to-edit":  {"edit"},
		"system:aggregate-to-view":  {"view"},
	}
	if diff := cmp.Diff(wantParts, bootstrap().parts); diff != "" {
		t.Errorf("roles only aggregated into others (-want +got):\n%s", diff)
	}
	if _, ok := upstream("system:coredns"); ok {
		t.Error("system:coredns (an add-on's role, not the API server's) is in the bootstrap policy")
	}
	clusterAdmin := []*secureauditv1.PolicyRule{
		{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}},
		{Verbs: []string{"*"}, NonResourceUrls: []string{"*"}},
	}
	if star, _ := upstream("cluster-admin"); !cmp.Equal(clusterAdmin, star, protocmp.Transform()) {
		t.Errorf("upstream cluster-admin %v, want %v", star, clusterAdmin)
	}
}

// TestUpstreamVersionDocumented checks that RBAC-035's description names
// the Kubernetes minor version the embedded bootstrap policy comes from.
func TestUpstreamVersionDocumented(t *testing.T) {
	v := bootstrap().version
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		t.Fatalf("bootstrap policy version %q, want a Kubernetes version", v)
	}
	if want := "Kubernetes " + parts[0] + "." + parts[1] + " "; !strings.Contains(ruleByID(BuiltinWidened).Rationale, want) {
		t.Errorf("RBAC-035's description does not name %q (the policy is %s's): recapture or update the text", want, v)
	}
}
