package discovery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/discovery"
)

// table is a small discovery in the shape the API server serves it: the
// core group first, a group in two versions, a CRD sharing a short name
// and a resource name with built-in groups.
func table() *discovery.Table {
	return discovery.New([]discovery.Resource{
		{Group: "", Version: "v1", Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Subresources: []string{"exec", "log", "status"}, PreferredVersion: true},
		{Group: "", Version: "v1", Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"}, PreferredVersion: true},
		{Group: "", Version: "v1", Name: "nodes", SingularName: "node", Kind: "Node", ShortNames: []string{"no"}, PreferredVersion: true},
		{Group: "apps", Version: "v1", Name: "deployments", SingularName: "deployment", Kind: "Deployment", Namespaced: true, ShortNames: []string{"deploy"}, Subresources: []string{"scale", "status"}, PreferredVersion: true},
		{Group: "events.k8s.io", Version: "v1", Name: "events", SingularName: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"}, PreferredVersion: true},
		{Group: "storage.k8s.io", Version: "v1", Name: "storageclasses", SingularName: "storageclass", Kind: "StorageClass", ShortNames: []string{"sc"}, PreferredVersion: true},
		{Group: "example.com", Version: "v2", Name: "widgets", SingularName: "widget", Kind: "Widget", Namespaced: true, ShortNames: []string{"deploy", "wd"}, PreferredVersion: true},
		{Group: "example.com", Version: "v1", Name: "widgets", SingularName: "widget", Kind: "Widget", Namespaced: true, ShortNames: []string{"wd"}},
		{Group: "example.com", Version: "v1", Name: "gadgets", Kind: "Gadget", Namespaced: false},
		{Group: "a.example.com", Version: "v1", Name: "things", SingularName: "thing", Kind: "Thing", Namespaced: true, PreferredVersion: true},
		{Group: "b.example.com", Version: "v1", Name: "things", SingularName: "thing", Kind: "Thing", Namespaced: true, PreferredVersion: true},
	})
}

func TestResolve(t *testing.T) {
	r := func(group, version, resource, sub string, namespaced bool) discovery.Resolved {
		return discovery.Resolved{Group: group, Version: version, Resource: resource, Subresource: sub, Namespaced: namespaced}
	}
	tests := []struct {
		arg     string
		want    discovery.Resolved
		wantErr string
	}{
		{"pods", r("", "v1", "pods", "", true), ""},
		{"PODS", r("", "v1", "pods", "", true), ""},
		{"pod", r("", "v1", "pods", "", true), ""},
		{"Pod", r("", "v1", "pods", "", true), ""},
		{"po", r("", "v1", "pods", "", true), ""},
		{"pods/exec", r("", "v1", "pods", "exec", true), ""},
		{"nodes", r("", "v1", "nodes", "", false), ""},
		// A name two groups serve: the core group first.
		{"events", r("", "v1", "events", "", true), ""},
		{"ev", r("", "v1", "events", "", true), ""},
		{"events.events.k8s.io", r("events.k8s.io", "v1", "events", "", true), ""},
		{"events.v1.events.k8s.io", r("events.k8s.io", "v1", "events", "", true), ""},
		// A group prefix matches when no group is named exactly so.
		{"storageclasses.storage", r("storage.k8s.io", "v1", "storageclasses", "", false), ""},
		{"events.events", r("events.k8s.io", "v1", "events", "", true), ""},
		// The first short name in discovery order wins: deploy is apps'.
		{"deploy", r("apps", "v1", "deployments", "", true), ""},
		{"deploy.example.com", r("example.com", "v2", "widgets", "", true), ""},
		{"deployments.apps/scale", r("apps", "v1", "deployments", "scale", true), ""},
		// A short name with a version drops the version, as kubectl's expander does.
		{"wd.v1.example.com", r("example.com", "v2", "widgets", "", true), ""},
		{"widgets.v1.example.com", r("example.com", "v1", "widgets", "", true), ""},
		{"widgets", r("example.com", "v2", "widgets", "", true), ""},
		// No singular name: the kind's lowercase is the singular.
		{"gadget", r("example.com", "v1", "gadgets", "", false), ""},
		{"*", r("", "", "*", "", true), ""},
		{"*/scale", r("", "", "*", "scale", true), ""},
		{"users", r("", "", "users", "", false), ""},
		{"userextras.authentication.k8s.io/scopes", r("authentication.k8s.io", "", "userextras", "scopes", false), ""},
		{"thing.a.example.com", r("a.example.com", "v1", "things", "", true), ""},
		// Two groups, one name: discovery order decides, as for kubectl.
		{"things", r("a.example.com", "v1", "things", "", true), ""},
		{"podz", discovery.Resolved{}, `did you mean pods`},
		{"deploymets.apps", discovery.Resolved{}, "did you mean deployments.apps?"},
		{"ingresses", discovery.Resolved{}, "unknown resource"},
		{"pods/exce", discovery.Resolved{}, `pods has no subresource "exce" (its subresources: exec, log, status)`},
		{"pods/", discovery.Resolved{}, "empty subresource"},
		{"users/x", discovery.Resolved{}, "no subresources"},
	}
	tbl := table()
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			got, err := tbl.Resolve(tt.arg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) error = %v, want one containing %q", tt.arg, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Resolve(%q) mismatch (-want +got):\n%s", tt.arg, diff)
			}
		})
	}
	if _, err := tbl.Resolve("podz"); !errors.Is(err, discovery.ErrUnknown) {
		t.Errorf("unknown resource error %v does not wrap ErrUnknown", err)
	}
}

// TestBuiltin checks the embedded capture: the version it names and the
// resources issue 18 found missing from the old hand table.
func TestBuiltin(t *testing.T) {
	if v := discovery.BuiltinVersion(); !strings.HasPrefix(v, "v1.") {
		t.Fatalf("BuiltinVersion() = %q", v)
	}
	tbl := discovery.Builtin()
	for _, gr := range []struct{ group, resource string }{
		{"", "pods"}, {"resource.k8s.io", "resourceclaims"}, {"resource.k8s.io", "resourceslices"}, {"resource.k8s.io", "deviceclasses"},
		{"networking.k8s.io", "ipaddresses"}, {"networking.k8s.io", "servicecidrs"}, {"storage.k8s.io", "volumeattributesclasses"},
	} {
		if _, ok := tbl.Lookup(gr.group, gr.resource); !ok {
			t.Errorf("built-in resources lack %s.%s", gr.resource, gr.group)
		}
	}
	if n := len(tbl.Resources()); n < 60 {
		t.Errorf("%d built-in resources, want about 70", n)
	}
}

func TestProtoRoundTrip(t *testing.T) {
	rs := table().Resources()
	if diff := cmp.Diff(rs, discovery.FromProto(discovery.ToProto(rs)).Resources()); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	if discovery.FromProto(nil) != nil {
		t.Error("FromProto(nil) is not nil")
	}
}

// TestFor: a live snapshot's header discovery is used, CRDs included; a
// snapshot without one gets the built-in resources.
func TestFor(t *testing.T) {
	h := &secureauditv1.SnapshotHeader{ApiResources: discovery.ToProto(table().Resources())}
	if got, err := discovery.For(h).Resolve("wd"); err != nil || got.Group != "example.com" {
		t.Errorf("For(live header).Resolve(wd) = %+v, %v; want the CRD", got, err)
	}
	if _, err := discovery.For(&secureauditv1.SnapshotHeader{}).Resolve("wd"); !errors.Is(err, discovery.ErrUnknown) {
		t.Errorf("For(file header).Resolve(wd) error = %v, want unknown (built-in resources only)", err)
	}
	if got, err := discovery.For(nil).Resolve("resourceclaims"); err != nil || got.Group != "resource.k8s.io" {
		t.Errorf("For(nil).Resolve(resourceclaims) = %+v, %v", got, err)
	}
}
