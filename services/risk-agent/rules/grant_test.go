package rules_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/rules"
)

func TestAnnotate(t *testing.T) {
	meta := func(ns, name string) *secureauditv1.ObjectMeta {
		return &secureauditv1.ObjectMeta{Namespace: ns, Name: name}
	}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles: []*secureauditv1.ClusterRole{{
			Meta:                 meta("", "monitoring"),
			AggregationSelectors: []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"agg": "true"}}},
		}},
		// ops/idle and kube-system/planted are bound but not created;
		// default's ServiceAccounts were not collected at all.
		ServiceAccounts: []*secureauditv1.ServiceAccount{
			{Meta: meta("ops", "ctl")}, {Meta: meta("kube-system", "coredns")},
		},
		// The add-on manager reconciles one ClusterRoleBinding and one
		// RoleBinding; the same names elsewhere carry no such label.
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{
			{Meta: &secureauditv1.ObjectMeta{Name: "p", Labels: map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"}}},
			{Meta: &secureauditv1.ObjectMeta{Name: "e", Labels: map[string]string{"addonmanager.kubernetes.io/mode": "EnsureExists"}}},
		},
		RoleBindings: []*secureauditv1.RoleBinding{
			{Meta: &secureauditv1.ObjectMeta{Namespace: "ops", Name: "rb", Labels: map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"}}},
		},
		Workloads: []*secureauditv1.Workload{
			{Meta: meta("ops", "web"), Kind: "Deployment", ServiceAccount: "ctl", Images: []string{"example.io/web:1.0"}},
			{Meta: meta("ops", "api"), Kind: "Deployment", ServiceAccount: "ctl"},
			{Meta: meta("default", "job"), Kind: "Pod", ServiceAccount: "runner"},
			{Meta: meta("kube-system", "coredns"), Kind: "Deployment", ServiceAccount: "coredns"},
		},
	}
	sa := func(ns, name string) *secureauditv1.SubjectRef {
		return &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: ns, Name: name}
	}
	crb := func(name string) *secureauditv1.BindingRef {
		return &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, Name: name}
	}
	cr := func(name string) *secureauditv1.FindingRole {
		return &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: name}
	}
	cluster := &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}
	findings := []*secureauditv1.Finding{
		{RuleId: "RBAC-003", Subject: sa("ops", "ctl"), Binding: crb("ctl"), Role: cr("ctl"), Scope: cluster},
		{RuleId: "RBAC-012", Subject: sa("ops", "ctl"), Binding: crb("ctl"), Role: cr("ctl"), Scope: cluster},
		{RuleId: "RBAC-003", Subject: sa("ops", "ctl"), Binding: crb("other"), Role: cr("ctl"), Scope: cluster},
		{RuleId: "RBAC-003", Subject: sa("ops", "idle"), Binding: crb("m"), Role: cr("monitoring"), Scope: cluster},
		{RuleId: "RBAC-002", Subject: sa("default", "stray"), Binding: crb("e"), Role: cr("edit"), Scope: cluster},
		{RuleId: "RBAC-002", Subject: &secureauditv1.SubjectRef{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "jane"}, Binding: crb("e"), Role: cr("edit"), Scope: cluster},
		{RuleId: "RBAC-017", Subject: sa("kube-system", "planted"), Binding: crb("p"), Role: cr("p"), Scope: cluster},
		{RuleId: "RBAC-003", Subject: sa("ops", "ctl"), Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Namespace: "ops", Name: "rb"}, Role: cr("ctl"), Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "ops"}},
		{RuleId: "RBAC-003", Subject: sa("ops", "ctl"), Binding: &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, Namespace: "dev", Name: "rb"}, Role: cr("ctl"), Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE, Namespace: "dev"}},
	}
	rules.Annotate(build(chunk, nil), findings)

	type got struct {
		Component, Reconciled, Missing, BindingReconciled bool
		Workloads                                         []*secureauditv1.WorkloadRef
	}
	deploy := func(name string, images ...string) *secureauditv1.WorkloadRef {
		return &secureauditv1.WorkloadRef{Kind: "Deployment", Namespace: "ops", Name: name, Images: images}
	}
	want := []got{
		{Component: true, Workloads: []*secureauditv1.WorkloadRef{deploy("api"), deploy("web", "example.io/web:1.0")}},
		{Component: true, Workloads: []*secureauditv1.WorkloadRef{deploy("api"), deploy("web", "example.io/web:1.0")}},
		{Component: true, Workloads: []*secureauditv1.WorkloadRef{deploy("api"), deploy("web", "example.io/web:1.0")}},
		// no workload runs as idle, but ops is a namespace with workloads
		// (an operator's namespace); its role is aggregated.
		{Component: true, Reconciled: true, Missing: true},
		// default holds workloads, but is nobody's operator namespace;
		// edit is a bootstrap role.
		{Reconciled: true},
		{Reconciled: true},
		// kube-system holds workloads, but an unused ServiceAccount there is
		// nobody's component; it is bound but not created; its binding
		// carries the add-on manager's Reconcile label.
		{Missing: true, BindingReconciled: true},
		// a reconciled RoleBinding; one of the same name elsewhere is not.
		{Component: true, BindingReconciled: true, Workloads: []*secureauditv1.WorkloadRef{deploy("api"), deploy("web", "example.io/web:1.0")}},
		{Component: true, Workloads: []*secureauditv1.WorkloadRef{deploy("api"), deploy("web", "example.io/web:1.0")}},
	}
	var gotAll []got
	for _, f := range findings {
		gotAll = append(gotAll, got{Component: f.GetComponent(), Reconciled: f.GetRoleReconciled(), Missing: f.GetSubjectMissing(), BindingReconciled: f.GetBindingReconciled(), Workloads: f.GetWorkloads()})
	}
	if diff := cmp.Diff(want, gotAll, protocmp.Transform()); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}

	keys := make([]string, len(findings))
	for i, f := range findings {
		keys[i] = f.GetGrantKey()
		if len(keys[i]) != 16 {
			t.Errorf("finding %d: grant key %q, want 16 hex digits", i, keys[i])
		}
	}
	if keys[0] != keys[1] {
		t.Errorf("two hits of one grant have keys %s and %s", keys[0], keys[1])
	}
	if keys[0] == keys[2] || keys[4] == keys[5] {
		t.Errorf("different grants share a key: %v", keys)
	}
	if again := rules.GrantKey(findings[0]); again != keys[0] {
		t.Errorf("GrantKey is not stable: %s then %s", keys[0], again)
	}
}
