package kube_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// loaded says what loadSynthetic put into the API server.
type loaded struct {
	// Created counts the objects created; Existing the ones the server
	// already held (kube-system, the bootstrap cluster-admin, admin, edit,
	// view and system:aggregate-to-* roles); Refused the Pods the
	// ServiceAccount admission plugin refuses (their ServiceAccount does
	// not exist: the generator's "ghost").
	Created, Existing, Refused int64
}

// loadSynthetic creates the objects of a synthetic snapshot chunk
// (services/risk-agent/synth) in the API server through client, as a
// cluster would hold them: each namespace gets the "default" ServiceAccount
// the ServiceAccount controller would create (this server runs no
// controller manager), Pods get one container. Objects are created by
// workers in parallel, namespaces and ServiceAccounts first.
func loadSynthetic(ctx context.Context, client kubernetes.Interface, c *secureauditv1.SnapshotChunk) (loaded, error) {
	var out loaded
	meta := func(m *secureauditv1.ObjectMeta) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), Labels: m.GetLabels(), Annotations: m.GetAnnotations()}
	}
	rules := func(rs []*secureauditv1.PolicyRule) []rbacv1.PolicyRule {
		out := []rbacv1.PolicyRule{}
		for _, r := range rs {
			out = append(out, rbacv1.PolicyRule{Verbs: r.GetVerbs(), APIGroups: r.GetApiGroups(), Resources: r.GetResources(),
				ResourceNames: r.GetResourceNames(), NonResourceURLs: r.GetNonResourceUrls()})
		}
		return out
	}
	roleRef := func(r *secureauditv1.RoleRef) rbacv1.RoleRef {
		kind := "Role"
		if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE {
			kind = "ClusterRole"
		}
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: r.GetName()}
	}
	subjects := func(ss []*secureauditv1.Subject) []rbacv1.Subject {
		var out []rbacv1.Subject
		for _, s := range ss {
			switch s.GetKind() {
			case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
				out = append(out, rbacv1.Subject{Kind: "ServiceAccount", Name: s.GetName(), Namespace: s.GetNamespace()})
			case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
				out = append(out, rbacv1.Subject{Kind: "Group", Name: s.GetName(), APIGroup: rbacv1.GroupName})
			default:
				out = append(out, rbacv1.Subject{Kind: "User", Name: s.GetName(), APIGroup: rbacv1.GroupName})
			}
		}
		return out
	}
	opts := metav1.CreateOptions{}
	// run creates with 8 workers; a refusal of the ServiceAccount
	// admission plugin is counted, any other error stops the load.
	run := func(fns []func() error) error {
		var (
			next  atomic.Int64
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(fns) || ctx.Err() != nil {
						return
					}
					err := fns[i]()
					switch {
					case err == nil:
						atomic.AddInt64(&out.Created, 1)
					case apierrors.IsAlreadyExists(err):
						atomic.AddInt64(&out.Existing, 1)
					case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "service account"):
						atomic.AddInt64(&out.Refused, 1)
					default:
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return first
	}
	core, rb := client.CoreV1(), client.RbacV1()
	var first, rest []func() error
	for _, n := range c.GetNamespaces() {
		first = append(first, func() error {
			_, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta(n.GetMeta())}, opts)
			return err
		})
	}
	for _, r := range c.GetClusterRoles() {
		rest = append(rest, func() error {
			o := &rbacv1.ClusterRole{ObjectMeta: meta(r.GetMeta()), Rules: rules(r.GetRules())}
			if sels := r.GetAggregationSelectors(); len(sels) > 0 {
				o.AggregationRule = &rbacv1.AggregationRule{}
				for _, s := range sels {
					o.AggregationRule.ClusterRoleSelectors = append(o.AggregationRule.ClusterRoleSelectors, metav1.LabelSelector{MatchLabels: s.GetMatchLabels()})
				}
			}
			_, err := rb.ClusterRoles().Create(ctx, o, opts)
			return err
		})
	}
	for _, r := range c.GetClusterRoleBindings() {
		rest = append(rest, func() error {
			_, err := rb.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta(r.GetMeta()), RoleRef: roleRef(r.GetRoleRef()), Subjects: subjects(r.GetSubjects())}, opts)
			return err
		})
	}
	for _, r := range c.GetRoles() {
		rest = append(rest, func() error {
			_, err := rb.Roles(r.GetMeta().GetNamespace()).Create(ctx, &rbacv1.Role{ObjectMeta: meta(r.GetMeta()), Rules: rules(r.GetRules())}, opts)
			return err
		})
	}
	for _, r := range c.GetRoleBindings() {
		rest = append(rest, func() error {
			_, err := rb.RoleBindings(r.GetMeta().GetNamespace()).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta(r.GetMeta()), RoleRef: roleRef(r.GetRoleRef()), Subjects: subjects(r.GetSubjects())}, opts)
			return err
		})
	}
	var accounts []func() error
	for _, n := range c.GetNamespaces() {
		accounts = append(accounts, func() error {
			_, err := core.ServiceAccounts(n.GetMeta().GetName()).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: n.GetMeta().GetName()}}, opts)
			return err
		})
	}
	for _, s := range c.GetServiceAccounts() {
		accounts = append(accounts, func() error {
			o := &corev1.ServiceAccount{ObjectMeta: meta(s.GetMeta()), AutomountServiceAccountToken: s.AutomountToken}
			_, err := core.ServiceAccounts(s.GetMeta().GetNamespace()).Create(ctx, o, opts)
			return err
		})
	}
	var pods []func() error
	for _, w := range c.GetWorkloads() {
		pods = append(pods, func() error {
			o := &corev1.Pod{ObjectMeta: meta(w.GetMeta()), Spec: corev1.PodSpec{
				ServiceAccountName:           w.GetServiceAccount(),
				AutomountServiceAccountToken: w.AutomountToken,
				Containers:                   []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
			}}
			_, err := core.Pods(w.GetMeta().GetNamespace()).Create(ctx, o, opts)
			return err
		})
	}
	for _, stage := range [][]func() error{first, accounts, rest, pods} {
		if err := run(stage); err != nil {
			return out, fmt.Errorf("load synthetic cluster: %w", err)
		}
	}
	return out, nil
}
