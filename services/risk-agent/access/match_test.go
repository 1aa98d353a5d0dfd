package access_test

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
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

func TestRequest(t *testing.T) {
	tests := []struct {
		verb, resource, ns, name string
		want                     access.Attributes
	}{
		{"get", "pods", "a", "", access.Attributes{ResourceRequest: true, Verb: "get", Resource: "pods", Namespace: "a"}},
		{"get", "pods/log", "a", "p", access.Attributes{ResourceRequest: true, Verb: "get", Resource: "pods", Subresource: "log", Namespace: "a", Name: "p"}},
		{"create", "deployments", "", "", access.Attributes{ResourceRequest: true, Verb: "create", APIGroup: "apps", Resource: "deployments"}},
		{"update", "deployments.apps/scale", "", "", access.Attributes{ResourceRequest: true, Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale"}},
		{"get", "widgets.example.com", "", "", access.Attributes{ResourceRequest: true, Verb: "get", APIGroup: "example.com", Resource: "widgets"}},
		{"get", "widgets", "", "", access.Attributes{ResourceRequest: true, Verb: "get", Resource: "widgets"}},
		{"get", "/metrics", "a", "x", access.Attributes{Verb: "get", Path: "/metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" "+tt.resource, func(t *testing.T) {
			if got := access.Request(tt.verb, tt.resource, tt.ns, tt.name); got != tt.want {
				t.Errorf("Request = %+v, want %+v", got, tt.want)
			}
		})
	}
}
