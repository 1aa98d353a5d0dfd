// Package synth generates synthetic RBAC snapshots for benchmarks and
// scale tests: namespaces with ServiceAccounts, Roles, RoleBindings and
// running pods, ClusterRoles (the built-in admin, edit and view aggregating
// from labelled roles among them) and ClusterRoleBindings, with a realistic
// share of risky grants (secrets read, pod create, exec, escalation verbs,
// wildcards, cluster-admin, dangling references). The same seed and size
// always give the same snapshot.
package synth

import (
	"fmt"
	"math/rand/v2"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Per-namespace shape: with the namespace itself, 50 objects.
const (
	saPerNS       = 8
	rolesPerNS    = 6
	bindingsPerNS = 10
	podsPerNS     = 25
	perNS         = 1 + saPerNS + rolesPerNS + bindingsPerNS + podsPerNS
	// One cluster role and one cluster role binding per this many objects.
	clusterEvery = 200
)

// Cluster returns a snapshot chunk of about objects objects (at least one
// namespace), generated from seed.
func Cluster(seed uint64, objects int) *secureauditv1.SnapshotChunk {
	rng := rand.New(rand.NewPCG(seed, 0x5ec0a0d17))
	nsCount := max(1, objects/perNS)
	clusterRoles := max(10, objects/clusterEvery)
	users := max(10, objects/20)
	groups := max(5, objects/100)
	c := &secureauditv1.SnapshotChunk{
		Header: &secureauditv1.SnapshotHeader{
			Cluster: "synthetic", Source: secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE,
			Origin: fmt.Sprintf("synth seed=%d objects=%d", seed, objects),
		},
	}
	user := func() *secureauditv1.Subject {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: fmt.Sprintf("user-%d@example.com", rng.IntN(users))}
	}
	group := func() *secureauditv1.Subject {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: fmt.Sprintf("group-%d", rng.IntN(groups))}
	}
	sa := func(ns string) *secureauditv1.Subject {
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: ns, Name: fmt.Sprintf("sa-%d", rng.IntN(saPerNS))}
	}
	subject := func(ns string) *secureauditv1.Subject {
		switch p := rng.Float64(); {
		case p < 0.45:
			return user()
		case p < 0.65:
			return group()
		case ns != "":
			return sa(ns)
		default:
			return sa(fmt.Sprintf("ns-%d", rng.IntN(nsCount)))
		}
	}

	// Built-in aggregated roles and cluster-admin.
	agg := "rbac.authorization.k8s.io/aggregate-to-"
	c.ClusterRoles = append(c.ClusterRoles,
		&secureauditv1.ClusterRole{Meta: meta("cluster-admin", ""), Rules: []*secureauditv1.PolicyRule{
			{Verbs: []string{"*"}, ApiGroups: []string{"*"}, Resources: []string{"*"}},
			{Verbs: []string{"*"}, NonResourceUrls: []string{"*"}},
		}},
		aggregating("admin", agg+"admin"), aggregating("edit", agg+"edit"), aggregating("view", agg+"view"),
		labelled("system:aggregate-to-view", agg+"view", rule([]string{"get", "list", "watch"}, "", "pods", "services", "configmaps")),
		labelled("system:aggregate-to-edit", agg+"edit", rule([]string{"create", "update", "patch", "delete"}, "", "pods", "services", "configmaps", "secrets"),
			rule([]string{"create"}, "", "pods/exec", "pods/attach"), rule([]string{"get", "list", "watch"}, "", "secrets")),
		labelled("system:aggregate-to-admin", agg+"admin", rule([]string{"create", "update", "patch", "delete"}, "rbac.authorization.k8s.io", "roles", "rolebindings")),
	)
	for i := range clusterRoles {
		r := &secureauditv1.ClusterRole{Meta: meta(fmt.Sprintf("cr-%d", i), ""), Rules: rules(rng, true)}
		if rng.Float64() < 0.05 {
			r.Meta.Labels = map[string]string{agg + "view": "true"}
		}
		c.ClusterRoles = append(c.ClusterRoles, r)
	}
	clusterRoleName := func() string {
		switch p := rng.Float64(); {
		case p < 0.02:
			return "cluster-admin"
		case p < 0.25:
			return []string{"admin", "edit", "view"}[rng.IntN(3)]
		case p < 0.26:
			return "missing-role"
		default:
			return fmt.Sprintf("cr-%d", rng.IntN(clusterRoles))
		}
	}
	for i := range max(5, objects/clusterEvery) {
		c.ClusterRoleBindings = append(c.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{
			Meta:     meta(fmt.Sprintf("crb-%d", i), ""),
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: clusterRoleName()},
			Subjects: subjects(rng, func() *secureauditv1.Subject { return subject("") }),
		})
	}
	for n := range nsCount {
		ns := fmt.Sprintf("ns-%d", n)
		if n == 0 {
			ns = "kube-system"
		}
		c.Namespaces = append(c.Namespaces, &secureauditv1.Namespace{Meta: meta(ns, "")})
		for i := range saPerNS {
			s := &secureauditv1.ServiceAccount{Meta: meta(fmt.Sprintf("sa-%d", i), ns)}
			if rng.Float64() < 0.2 {
				s.AutomountToken = new(bool)
			}
			c.ServiceAccounts = append(c.ServiceAccounts, s)
		}
		for i := range rolesPerNS {
			c.Roles = append(c.Roles, &secureauditv1.Role{Meta: meta(fmt.Sprintf("role-%d", i), ns), Rules: rules(rng, false)})
		}
		for i := range bindingsPerNS {
			ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: fmt.Sprintf("role-%d", rng.IntN(rolesPerNS))}
			if rng.Float64() < 0.4 {
				ref = &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: clusterRoleName()}
			}
			c.RoleBindings = append(c.RoleBindings, &secureauditv1.RoleBinding{
				Meta: meta(fmt.Sprintf("rb-%d", i), ns), RoleRef: ref,
				Subjects: subjects(rng, func() *secureauditv1.Subject { return subject(ns) }),
			})
		}
		for i := range podsPerNS {
			w := &secureauditv1.Workload{Meta: meta(fmt.Sprintf("pod-%d", i), ns), Kind: "Pod", ServiceAccount: fmt.Sprintf("sa-%d", rng.IntN(saPerNS))}
			switch p := rng.Float64(); {
			case p < 0.3:
				w.ServiceAccount = "default"
			case p < 0.32:
				w.ServiceAccount = "ghost"
			}
			if rng.Float64() < 0.1 {
				w.AutomountToken = new(bool)
			}
			c.Workloads = append(c.Workloads, w)
		}
	}
	c.Trailer = &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{
		Namespaces: uint32(len(c.Namespaces)), Roles: uint32(len(c.Roles)), ClusterRoles: uint32(len(c.ClusterRoles)),
		RoleBindings: uint32(len(c.RoleBindings)), ClusterRoleBindings: uint32(len(c.ClusterRoleBindings)),
		ServiceAccounts: uint32(len(c.ServiceAccounts)), Workloads: uint32(len(c.Workloads)),
	}}
	return c
}

// Objects counts the objects of a chunk.
func Objects(c *secureauditv1.SnapshotChunk) int {
	return len(c.GetNamespaces()) + len(c.GetRoles()) + len(c.GetClusterRoles()) + len(c.GetRoleBindings()) +
		len(c.GetClusterRoleBindings()) + len(c.GetServiceAccounts()) + len(c.GetWorkloads())
}

func meta(name, ns string) *secureauditv1.ObjectMeta {
	return &secureauditv1.ObjectMeta{Name: name, Namespace: ns}
}

func rule(verbs []string, group string, resources ...string) *secureauditv1.PolicyRule {
	return &secureauditv1.PolicyRule{Verbs: verbs, ApiGroups: []string{group}, Resources: resources}
}

func aggregating(name, label string) *secureauditv1.ClusterRole {
	return &secureauditv1.ClusterRole{Meta: meta(name, ""), AggregationSelectors: []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{label: "true"}}}}
}

func labelled(name, label string, rs ...*secureauditv1.PolicyRule) *secureauditv1.ClusterRole {
	m := meta(name, "")
	m.Labels = map[string]string{label: "true"}
	return &secureauditv1.ClusterRole{Meta: m, Rules: rs}
}

// subjects returns one to three subjects, rarely a system group.
func subjects(rng *rand.Rand, next func() *secureauditv1.Subject) []*secureauditv1.Subject {
	var out []*secureauditv1.Subject
	for range 1 + rng.IntN(3) {
		out = append(out, next())
	}
	if rng.Float64() < 0.005 {
		out = append(out, &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: "system:authenticated"})
	}
	return out
}

// rules returns a role's rules: mostly harmless reads, with a realistic
// share of risky grants.
func rules(rng *rand.Rand, cluster bool) []*secureauditv1.PolicyRule {
	out := []*secureauditv1.PolicyRule{rule([]string{"get", "list", "watch"}, "", "pods", "services", "configmaps")}
	if rng.Float64() < 0.5 {
		out = append(out, rule([]string{"get", "list", "watch", "create", "update", "patch"}, "apps", "deployments", "statefulsets"))
	}
	risky := []struct {
		p float64
		r *secureauditv1.PolicyRule
	}{
		{0.08, rule([]string{"get", "list"}, "", "secrets")},
		{0.06, rule([]string{"create"}, "", "pods")},
		{0.04, rule([]string{"create"}, "", "pods/exec")},
		{0.03, rule([]string{"create"}, "", "serviceaccounts/token")},
		{0.02, rule([]string{"bind", "escalate"}, "rbac.authorization.k8s.io", "roles", "clusterroles")},
		{0.02, rule([]string{"create"}, "rbac.authorization.k8s.io", "rolebindings", "clusterrolebindings")},
		{0.01, rule([]string{"impersonate"}, "", "users", "groups", "serviceaccounts")},
		{0.01, rule([]string{"*"}, "*", "*")},
		{0.02, rule([]string{"*"}, "", "configmaps")},
		{0.02, rule([]string{"delete", "deletecollection"}, "", "events", "secrets")},
	}
	if cluster {
		risky = append(risky,
			struct {
				p float64
				r *secureauditv1.PolicyRule
			}{0.01, rule([]string{"get", "create"}, "", "nodes/proxy")},
			struct {
				p float64
				r *secureauditv1.PolicyRule
			}{0.01, rule([]string{"create"}, "", "persistentvolumes")},
		)
	}
	for _, x := range risky {
		if rng.Float64() < x.p {
			out = append(out, x.r)
		}
	}
	return out
}
