package rules_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"v1.34.2", 1, 34, true},
		{"1.35", 1, 35, true},
		{"v1.30.1-gke.1329003", 1, 30, true},
		{"v1.29.3+k3s1", 1, 29, true},
		{"v1.37.0-alpha.1", 1, 37, true},
		{"", 0, 0, false},
		{"v1", 0, 0, false},
		{"latest", 0, 0, false},
		{"v1.x", 0, 0, false},
		{"v1.34x", 0, 0, false},
	}
	for _, tt := range tests {
		major, minor, ok := rules.ParseVersion(tt.in)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("ParseVersion(%q) = %d, %d, %v; want %d, %d, %v", tt.in, major, minor, ok, tt.major, tt.minor, tt.ok)
		}
	}
}

func TestSemantics(t *testing.T) {
	const (
		discovery = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY
		flag      = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG
		nodes     = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_NODES
		def       = secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DEFAULT
	)
	tests := []struct {
		name   string
		header *secureauditv1.SnapshotHeader
		want   *secureauditv1.AuthorizerSemantics
	}{
		{"no header", nil, &secureauditv1.AuthorizerSemantics{ServerVersion: rules.DefaultServerVersion, Source: def, StreamingNeedsCreate: true}},
		{"no version", &secureauditv1.SnapshotHeader{Cluster: "c"}, &secureauditv1.AuthorizerSemantics{ServerVersion: rules.DefaultServerVersion, Source: def, StreamingNeedsCreate: true}},
		{"unparseable version", &secureauditv1.SnapshotHeader{ServerVersion: "latest", ServerVersionSource: flag}, &secureauditv1.AuthorizerSemantics{ServerVersion: rules.DefaultServerVersion, Source: def, StreamingNeedsCreate: true}},
		{"1.34 from discovery", &secureauditv1.SnapshotHeader{ServerVersion: "v1.34.2", ServerVersionSource: discovery}, &secureauditv1.AuthorizerSemantics{ServerVersion: "v1.34.2", Source: discovery}},
		{"1.35 from nodes", &secureauditv1.SnapshotHeader{ServerVersion: "v1.35.0", ServerVersionSource: nodes}, &secureauditv1.AuthorizerSemantics{ServerVersion: "v1.35.0", Source: nodes, StreamingNeedsCreate: true}},
		{"live without source", &secureauditv1.SnapshotHeader{Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE, ServerVersion: "v1.31.4"}, &secureauditv1.AuthorizerSemantics{ServerVersion: "v1.31.4", Source: discovery}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, rules.Semantics(tt.header), protocmp.Transform()); diff != "" {
				t.Errorf("Semantics (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStreamingByVersion: since Kubernetes 1.35 exec, attach and
// port-forward need create; get alone gave them before (websocket upgrade).
func TestStreamingByVersion(t *testing.T) {
	role := func(name string, verbs ...string) *secureauditv1.Role {
		return &secureauditv1.Role{
			Meta: &secureauditv1.ObjectMeta{Name: name, Namespace: "team-a"},
			Rules: []*secureauditv1.PolicyRule{{Verbs: verbs, ApiGroups: []string{""},
				Resources: []string{"pods/exec", "pods/attach", "pods/portforward"}}},
		}
	}
	bind := func(user, roleName string) *secureauditv1.RoleBinding {
		return &secureauditv1.RoleBinding{
			Meta:     &secureauditv1.ObjectMeta{Name: user, Namespace: "team-a"},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: roleName},
			Subjects: []*secureauditv1.Subject{{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: user}},
		}
	}
	tests := []struct {
		version string
		want    map[string][]string // rule ID -> users
		reason  string              // RBAC-006 severity reason of getter
	}{
		{"v1.34.9", map[string][]string{rules.PodExec: {"creator", "getter"}, rules.PortForward: {"creator", "getter"}},
			"base HIGH (exec/attach: get pods/exec, get pods/attach)"},
		{"v1.35.0", map[string][]string{rules.PodExec: {"creator"}, rules.PortForward: {"creator"}}, ""},
		{"", map[string][]string{rules.PodExec: {"creator"}, rules.PortForward: {"creator"}}, ""},
	}
	for _, tt := range tests {
		t.Run("version="+tt.version, func(t *testing.T) {
			chunk := &secureauditv1.SnapshotChunk{
				Header:       &secureauditv1.SnapshotHeader{Cluster: "c", ServerVersion: tt.version},
				Roles:        []*secureauditv1.Role{role("get-only", "get"), role("create-only", "create")},
				RoleBindings: []*secureauditv1.RoleBinding{bind("getter", "get-only"), bind("creator", "create-only")},
			}
			got := map[string][]string{}
			reason := ""
			for _, f := range rules.Evaluate(build(chunk, nil)) {
				got[f.GetRuleId()] = append(got[f.GetRuleId()], f.GetSubject().GetName())
				if f.GetRuleId() == rules.PodExec && f.GetSubject().GetName() == "getter" {
					reason = f.GetSeverityReason()
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings by rule (-want +got):\n%s", diff)
			}
			if reason != tt.reason {
				t.Errorf("getter's RBAC-006 reason = %q, want %q", reason, tt.reason)
			}
		})
	}
}
