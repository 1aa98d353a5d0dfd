package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	riskdiscovery "secureaudit.dev/services/risk-agent/discovery"
	"secureaudit.dev/test/kube"
)

// builtinFile is the captured built-in resources the risk-agent embeds.
var builtinFile = filepath.Join("..", "..", "services", "risk-agent", "discovery", "builtin.json")

// TestBuiltinResourcesCaptured checks that the built-in resources the
// risk-agent and the CLI read requests with (services/risk-agent/discovery
// builtin.json) are exactly what this API server's discovery serves, read by
// the rbac-agent's live source into the snapshot header; -update rewrites the
// file. Run it on a fresh server: the shared one may hold no CRDs or
// aggregated APIs either, so it is used as is.
func TestBuiltinResourcesCaptured(t *testing.T) {
	s := server(t)
	got := liveDiscovery(t, s)
	if len(got) < 60 {
		t.Fatalf("discovery has %d resources, want the ~70 built-in ones", len(got))
	}
	c := riskdiscovery.Captured{
		Source: "kube-apiserver " + kube.Version + " (k8s.io/kubernetes " + kube.Version + ", default feature gates, built by test/kube), " +
			"discovery read by the rbac-agent's live source; regenerate with: go test ./test/kube -run TestBuiltinResourcesCaptured -update",
		ServerVersion: kube.Version,
		Resources:     got,
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(builtinFile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d resources)", builtinFile, len(got))
		return
	}
	old, err := os.ReadFile(builtinFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, data) {
		var want riskdiscovery.Captured
		if err := json.Unmarshal(old, &want); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%s differs from the API server's discovery (-file +server), rerun with -update:\n%s", builtinFile, cmp.Diff(want, c))
	}
}

// liveDiscovery collects the server with the rbac-agent's live source and
// returns the discovery of the snapshot header.
func liveDiscovery(t *testing.T, s *kube.Server) []riskdiscovery.Resource {
	t.Helper()
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := collect.NewLive(kubeclient.New(admin), "test", s.Host, v).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Header.GetApiResourcesPartial() {
		t.Fatal("discovery is partial")
	}
	tbl := riskdiscovery.FromProto(snap.Header.GetApiResources())
	if tbl == nil {
		t.Fatal("the live snapshot has no discovery")
	}
	return tbl.Resources()
}

// sharedShortNames are the short names of several resources (ev: events in
// the core group and in events.k8s.io). client-go expands a short name with
// the first resource in the order of its discovery lists, which for
// aggregated discovery is map order: kubectl's answer then changes from run
// to run (it warns "short name could also match lower priority resource").
// Resolve takes discovery's group order, as the RESTMapper's priority does
// (core first); these names are left out of the comparisons with kubectl.
func sharedShortNames(rs []riskdiscovery.Resource) map[string]bool {
	owner := map[string]string{}
	shared := map[string]bool{}
	for _, r := range rs {
		for _, s := range r.ShortNames {
			if o, ok := owner[s]; ok && o != r.GroupResource() {
				shared[s] = true
			}
			owner[s] = r.GroupResource()
		}
	}
	return shared
}

// TestResolveMatchesKubectl reads every form of every resource name kubectl
// accepts (plural, singular, kind, short names, with the group, with the
// version and group, with a group prefix) and some it does not, with the
// table of the live discovery, and compares with what kubectl auth can-i
// makes of it: its resourceFor (k8s.io/kubectl pkg/cmd/auth/cani.go,
// repeated below) over client-go's shortcut expander and discovery
// RESTMapper, the RESTMapper kubectl builds.
func TestResolveMatchesKubectl(t *testing.T) {
	s := server(t)
	tbl := riskdiscovery.New(liveDiscovery(t, s))
	dc, err := discovery.NewDiscoveryClientForConfig(s.Config(s.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
	kubectl := func(arg string) (schema.GroupVersionResource, bool) {
		full, gr := schema.ParseResourceArg(strings.ToLower(arg))
		var gvr schema.GroupVersionResource
		if full != nil {
			gvr, _ = mapper.ResourceFor(*full)
		}
		if gvr.Empty() {
			var err error
			if gvr, err = mapper.ResourceFor(gr.WithVersion("")); err != nil {
				return schema.GroupVersionResource{}, false
			}
		}
		return gvr, true
	}
	var args []string
	shared := sharedShortNames(tbl.Resources())
	for _, r := range tbl.Resources() {
		names := append([]string{r.Name, r.SingularName, r.Kind}, r.ShortNames...)
		for _, n := range names {
			if n == "" || shared[n] {
				continue
			}
			args = append(args, n, n+"."+r.Group, n+"."+r.Version+"."+r.Group, n+".v9."+r.Group)
			if i := strings.Index(r.Group, "."); i > 0 {
				args = append(args, n+"."+r.Group[:i])
			}
			if len(r.Group) > 2 {
				args = append(args, n+"."+r.Group[:2])
			}
		}
	}
	args = append(args, "ingres", "deploymentz", "pod.apps", "foos", "events.events", "scale", "x.y.z", "csr", "hpa.autoscal")
	compared, resolved := 0, 0
	for _, arg := range args {
		want, ok := kubectl(arg)
		got, err := tbl.Resolve(arg)
		compared++
		switch {
		case !ok && err != nil:
		case !ok:
			t.Errorf("%q: kubectl finds no resource; Resolve = %+v", arg, got)
		case err != nil:
			t.Errorf("%q: kubectl reads %v; Resolve: %v", arg, want, err)
		case got.Group != want.Group || got.Resource != want.Resource || got.Version != want.Version:
			t.Errorf("%q: kubectl reads %v; Resolve = %s", arg, want, fmt.Sprintf("%s/%s %s", got.Group, got.Version, got.Resource))
		default:
			resolved++
		}
	}
	t.Logf("%d resource arguments compared with kubectl's RESTMapper, %d resolved", compared, resolved)
}

// TestLiveDiscoveryHasCRDs: the live source's discovery includes a
// CustomResourceDefinition's resource, with its short name, scope and
// subresources, and requests about it resolve with it.
func TestLiveDiscoveryHasCRDs(t *testing.T) {
	server(t)
	ctx := context.Background()
	s, err := kube.Start(ctx) // its own: the shared server's discovery is the built-in one
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	dyn, err := dynamic.NewForConfig(s.Config(s.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": []any{"wd"}},
			"scope": "Cluster",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema":       map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				"subresources": map[string]any{"status": map[string]any{}},
			}},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(gvr).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		tbl := riskdiscovery.New(liveDiscovery(t, s))
		got, err := tbl.Resolve("wd/status")
		if err == nil {
			want := riskdiscovery.Resolved{Group: "example.com", Version: "v1", Resource: "widgets", Subresource: "status"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Resolve(wd/status) with the live discovery mismatch (-want +got):\n%s", diff)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRD never showed in the live discovery: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition
	}
}
