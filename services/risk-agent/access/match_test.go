package access_test

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/discovery"
)

func res(verb, group, resource, sub, name string) access.Attributes {
	return access.Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name}
}

func url(verb, path string) access.Attributes {
	return access.Attributes{Verb: verb, Path: path}
}

// TestRuleAllows follows the cases of the upstream helpers' tests
// (k8s.io/component-helpers/auth/rbac/v1 and the RBAC authorizer's).
func TestRuleAllows(t *testing.T) {
	rule := func(verbs, groups, resources, names []string) *secureauditv1.PolicyRule {
		return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: groups, Resources: resources, ResourceNames: names}
	}
	urls := func(verbs []string, u ...string) *secureauditv1.PolicyRule {
		return &secureauditv1.PolicyRule{Verbs: verbs, NonResourceUrls: u}
	}
	l := func(s ...string) []string { return s }
	tests := []struct {
		name string
		rule *secureauditv1.PolicyRule
		req  access.Attributes
		want bool
	}{
		{"exact", rule(l("get"), l(""), l("pods"), nil), res("get", "", "pods", "", ""), true},
		{"other verb", rule(l("get"), l(""), l("pods"), nil), res("list", "", "pods", "", ""), false},
		{"verb star", rule(l("*"), l(""), l("pods"), nil), res("escalate", "", "pods", "", ""), true},
		{"other group", rule(l("get"), l("apps"), l("pods"), nil), res("get", "", "pods", "", ""), false},
		{"group star", rule(l("get"), l("*"), l("pods"), nil), res("get", "batch", "pods", "", ""), true},
		{"no groups matches nothing", rule(l("get"), nil, l("pods"), nil), res("get", "", "pods", "", ""), false},
		{"resource star covers subresources", rule(l("get"), l(""), l("*"), nil), res("get", "", "pods", "log", ""), true},
		{"plain resource does not cover subresource", rule(l("get"), l(""), l("pods"), nil), res("get", "", "pods", "log", ""), false},
		{"subresource exact", rule(l("get"), l(""), l("pods/log"), nil), res("get", "", "pods", "log", ""), true},
		{"subresource rule does not cover resource", rule(l("get"), l(""), l("pods/log"), nil), res("get", "", "pods", "", ""), false},
		{"star slash subresource", rule(l("get"), l(""), l("*/scale"), nil), res("get", "apps", "deployments", "scale", ""), false},
		{"star slash subresource in group", rule(l("get"), l("apps"), l("*/scale"), nil), res("get", "apps", "deployments", "scale", ""), true},
		{"star slash other subresource", rule(l("get"), l("*"), l("*/scale"), nil), res("get", "", "pods", "log", ""), false},
		{"star slash prefix of subresource", rule(l("get"), l("*"), l("*/sta"), nil), res("get", "", "pods", "status", ""), false},
		{"star slash without request subresource", rule(l("get"), l("*"), l("*/scale"), nil), res("get", "", "pods", "", ""), false},
		{"resource slash star is literal", rule(l("get"), l("*"), l("pods/*"), nil), res("get", "", "pods", "log", ""), false},
		{"resource slash star matches subresource star", rule(l("get"), l("*"), l("pods/*"), nil), res("get", "", "pods", "*", ""), true},
		{"x/star suffix trick", rule(l("get"), l("*"), l("x/log"), nil), res("get", "", "pods", "log", ""), false},
		{"name listed", rule(l("get"), l(""), l("secrets"), l("a", "b")), res("get", "", "secrets", "", "b"), true},
		{"name not listed", rule(l("get"), l(""), l("secrets"), l("a")), res("get", "", "secrets", "", "c"), false},
		{"names restrict nameless requests", rule(l("list"), l(""), l("secrets"), l("a")), res("list", "", "secrets", "", ""), false},
		{"no names any name", rule(l("get"), l(""), l("secrets"), nil), res("get", "", "secrets", "", "x"), true},
		{"resource rule never allows a URL", rule(l("*"), l("*"), l("*"), nil), url("get", "/healthz"), false},
		{"url exact", urls(l("get"), "/healthz"), url("get", "/healthz"), true},
		{"url other", urls(l("get"), "/healthz"), url("get", "/livez"), false},
		{"url star", urls(l("get"), "*"), url("get", "/anything"), true},
		{"url prefix", urls(l("get"), "/api*"), url("get", "/apis/apps"), true},
		{"url prefix itself", urls(l("get"), "/healthz/*"), url("get", "/healthz/"), true},
		{"url prefix needs the slash", urls(l("get"), "/healthz/*"), url("get", "/healthz"), false},
		{"url several stars", urls(l("get"), "/metrics**"), url("get", "/metrics/x"), true},
		{"url star inside is literal", urls(l("get"), "/a*/b"), url("get", "/ax/b"), false},
		{"url verb", urls(l("get"), "*"), url("post", "/x"), false},
		{"url rule never allows a resource", urls(l("*"), "*"), res("get", "", "pods", "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := access.RuleAllows(tt.rule, tt.req); got != tt.want {
				t.Errorf("RuleAllows(%v, %+v) = %v, want %v", tt.rule, tt.req, got, tt.want)
			}
		})
	}
}

// mustRequest parses a request against the built-in resources.
func mustRequest(verb, resource, ns, name string) access.Attributes {
	a, err := access.ParseRequest(discovery.Builtin(), verb, resource, ns, name)
	if err != nil {
		panic(err)
	}
	return a
}

func TestParseRequest(t *testing.T) {
	attrs := func(verb, group, resource, sub, ns, name string) access.Attributes {
		return access.Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Namespace: ns, Name: name}
	}
	tests := []struct {
		verb, resource, ns, name string
		want                     access.Attributes
		wantErr                  string
	}{
		{"get", "pods", "a", "", attrs("get", "", "pods", "", "a", ""), ""},
		{"get", "pods/log", "a", "p", attrs("get", "", "pods", "log", "a", "p"), ""},
		{"get", "po", "a", "", attrs("get", "", "pods", "", "a", ""), ""},
		{"get", "Pod", "a", "", attrs("get", "", "pods", "", "a", ""), ""},
		{"create", "deployments", "", "", attrs("create", "apps", "deployments", "", "", ""), ""},
		{"create", "deploy", "x", "", attrs("create", "apps", "deployments", "", "x", ""), ""},
		{"update", "deployments.apps/scale", "", "", attrs("update", "apps", "deployments", "scale", "", ""), ""},
		{"get", "ingresses.v1.networking.k8s.io", "n", "", attrs("get", "networking.k8s.io", "ingresses", "", "n", ""), ""},
		{"get", "ing.v1.networking.k8s.io", "n", "", attrs("get", "networking.k8s.io", "ingresses", "", "n", ""), ""},
		{"get", "ingresses.networking.k8s.io", "n", "", attrs("get", "networking.k8s.io", "ingresses", "", "n", ""), ""},
		{"get", "storageclasses.storage", "", "", attrs("get", "storage.k8s.io", "storageclasses", "", "", ""), ""},
		{"get", "events", "n", "", attrs("get", "", "events", "", "n", ""), ""},
		{"get", "events.events.k8s.io", "n", "", attrs("get", "events.k8s.io", "events", "", "n", ""), ""},
		{"list", "resourceclaims", "n", "", attrs("list", "resource.k8s.io", "resourceclaims", "", "n", ""), ""},
		{"list", "ipaddresses", "", "", attrs("list", "networking.k8s.io", "ipaddresses", "", "", ""), ""},
		// A cluster-scoped resource is requested without a namespace.
		{"get", "nodes", "a", "n1", attrs("get", "", "nodes", "", "", "n1"), ""},
		{"get", "*", "a", "", attrs("get", "", "*", "", "a", ""), ""},
		{"impersonate", "users", "", "alice", attrs("impersonate", "", "users", "", "", "alice"), ""},
		{"impersonate", "userextras.authentication.k8s.io/scopes", "", "x", attrs("impersonate", "authentication.k8s.io", "userextras", "scopes", "", "x"), ""},
		{"approve", "signers.certificates.k8s.io", "", "example.com/s", attrs("approve", "certificates.k8s.io", "signers", "", "", "example.com/s"), ""},
		{"get", "/metrics", "a", "x", access.Attributes{Verb: "get", Path: "/metrics"}, ""},
		{"get", "ingres", "", "", access.Attributes{}, "did you mean ingresses.networking.k8s.io"},
		{"get", "widgets.example.com", "", "", access.Attributes{}, "unknown resource"},
		{"get", "pods/exce", "", "", access.Attributes{}, `no subresource "exce"`},
		{"get", "ingresses.v1.apps", "", "", access.Attributes{}, "unknown resource"},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" "+tt.resource, func(t *testing.T) {
			got, err := access.ParseRequest(discovery.Builtin(), tt.verb, tt.resource, tt.ns, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRequest error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("ParseRequest = %+v, want %+v", got, tt.want)
			}
		})
	}
}
