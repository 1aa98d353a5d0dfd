package collect_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
)

// TestLiveDiscovery: the live source puts the API server's discovery into
// the header, subresources folded into their resource, the preferred
// version marked, CRDs and aggregated APIs like any other group.
func TestLiveDiscovery(t *testing.T) {
	client := newFake(t)
	client.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}},
			{Name: "pods/exec", Kind: "PodExecOptions", Namespaced: true},
			{Name: "nodes", SingularName: "node", Kind: "Node"},
		}},
		{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
			{Name: "widgets", SingularName: "widget", Kind: "Widget", Namespaced: true, ShortNames: []string{"wd"}},
			{Name: "widgets/status", Kind: "Widget", Namespaced: true},
		}},
	}
	snap, err := collect.NewLive(kubeclient.New(client), "prod", "https://api.example:6443", newValidator(t)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []*secureauditv1.APIResource{
		{Version: "v1", Name: "pods", SingularName: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Subresources: []string{"exec"}, PreferredVersion: true},
		{Version: "v1", Name: "nodes", SingularName: "node", Kind: "Node", PreferredVersion: true},
		{Group: "example.com", Version: "v1", Name: "widgets", SingularName: "widget", Kind: "Widget", Namespaced: true, ShortNames: []string{"wd"}, Subresources: []string{"status"}, PreferredVersion: true},
	}
	if diff := cmp.Diff(want, snap.Header.GetApiResources(), protocmp.Transform()); diff != "" {
		t.Errorf("header discovery mismatch (-want +got):\n%s", diff)
	}
	if snap.Header.GetApiResourcesPartial() {
		t.Error("discovery marked partial")
	}
}

func TestConvertDiscoveryLimits(t *testing.T) {
	var many []string
	for i := range 70 {
		many = append(many, "s"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	lists := []*metav1.APIResourceList{{GroupVersion: "x.io/v1", APIResources: []metav1.APIResource{
		{Name: "things", Kind: "Thing", ShortNames: many},
		{Name: string(make([]byte, 300)), Kind: "Long"},
	}}}
	got, truncated := collect.ConvertDiscovery([]*metav1.APIGroup{{Name: "x.io", PreferredVersion: metav1.GroupVersionForDiscovery{Version: "v1"}}}, lists)
	if !truncated || len(got) != 1 || len(got[0].GetShortNames()) != 64 || !got[0].GetPreferredVersion() {
		t.Errorf("ConvertDiscovery = %v, truncated %v; want one resource with 64 short names, truncated", got, truncated)
	}
}

// TestLiveDiscoveryFails: discovery that fails marks the header partial and
// the collection goes on.
func TestLiveDiscoveryFails(t *testing.T) {
	client := newFake(t)
	client.PrependReactor("get", "group", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("discovery forbidden")
	})
	snap, err := collect.NewLive(kubeclient.New(client), "prod", "https://api.example:6443", newValidator(t)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !snap.Header.GetApiResourcesPartial() || len(snap.Header.GetApiResources()) != 0 {
		t.Errorf("header: partial=%v, %d resources; want partial and none", snap.Header.GetApiResourcesPartial(), len(snap.Header.GetApiResources()))
	}
}
