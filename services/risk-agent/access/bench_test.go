package access_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// synthetic returns a cluster of about n objects: namespaces each holding
// ServiceAccounts, Roles, RoleBindings and pods, plus ClusterRoles (some
// aggregated) and ClusterRoleBindings, with a share of wildcard and secret
// grants.
func synthetic(n int) *snapshot.Snapshot {
	r := rand.New(rand.NewPCG(1, 2))
	verbs := [][]string{{"get", "list", "watch"}, {"*"}, {"create", "update", "patch", "delete"}, {"get"}}
	resources := [][]string{{"pods", "pods/log"}, {"secrets"}, {"deployments", "replicasets"}, {"*"}, {"configmaps"}, {"pods/exec"}, {"*/scale"}}
	groups := [][]string{{""}, {"apps"}, {"*"}, {"", "apps", "batch"}}
	rule := func() *secureauditv1.PolicyRule {
		return &secureauditv1.PolicyRule{Verbs: verbs[r.IntN(len(verbs))], ApiGroups: groups[r.IntN(len(groups))], Resources: resources[r.IntN(len(resources))]}
	}
	c := &secureauditv1.SnapshotChunk{}
	const perNS = 100 // 10 ServiceAccounts, 20 Roles, 60 RoleBindings, 9 pods, the namespace
	namespaces := max(1, n*9/10/perNS)
	clusterBindings := max(1, n-namespaces*perNS-n/200)
	clusterRoles := max(1, n/200)
	for i := range clusterRoles {
		cr := &secureauditv1.ClusterRole{Meta: &secureauditv1.ObjectMeta{Name: fmt.Sprintf("cr-%d", i)}}
		if i%20 == 0 {
			cr.AggregationSelectors = []*secureauditv1.LabelSelector{{MatchLabels: map[string]string{"agg": fmt.Sprint(i)}}}
		} else {
			cr.Meta.Labels = map[string]string{"agg": fmt.Sprint(i / 20 * 20)}
			cr.Rules = []*secureauditv1.PolicyRule{rule(), rule()}
		}
		c.ClusterRoles = append(c.ClusterRoles, cr)
	}
	sub := func(ns string) *secureauditv1.Subject {
		switch r.IntN(3) {
		case 0:
			return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: fmt.Sprintf("user-%d@example.com", r.IntN(5000))}
		case 1:
			return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_GROUP, Name: fmt.Sprintf("group-%d", r.IntN(500))}
		}
		return &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT, Namespace: ns, Name: fmt.Sprintf("sa-%d", r.IntN(10))}
	}
	for i := range namespaces {
		ns := fmt.Sprintf("ns-%d", i)
		c.Namespaces = append(c.Namespaces, &secureauditv1.Namespace{Meta: &secureauditv1.ObjectMeta{Name: ns}})
		for j := range 10 {
			c.ServiceAccounts = append(c.ServiceAccounts, &secureauditv1.ServiceAccount{Meta: &secureauditv1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sa-%d", j)}})
		}
		for j := range 20 {
			c.Roles = append(c.Roles, &secureauditv1.Role{Meta: &secureauditv1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("role-%d", j)}, Rules: []*secureauditv1.PolicyRule{rule(), rule()}})
		}
		for j := range 60 {
			ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Name: fmt.Sprintf("role-%d", r.IntN(20))}
			if r.IntN(3) == 0 {
				ref = &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: fmt.Sprintf("cr-%d", r.IntN(clusterRoles))}
			}
			c.RoleBindings = append(c.RoleBindings, &secureauditv1.RoleBinding{
				Meta: &secureauditv1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("rb-%d", j)}, RoleRef: ref,
				Subjects: []*secureauditv1.Subject{sub(ns), sub(ns)},
			})
		}
		for j := range 9 {
			c.Workloads = append(c.Workloads, &secureauditv1.Workload{Kind: "Pod", Meta: &secureauditv1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("pod-%d", j)}, ServiceAccount: fmt.Sprintf("sa-%d", j)})
		}
	}
	for i := range clusterBindings {
		c.ClusterRoleBindings = append(c.ClusterRoleBindings, &secureauditv1.ClusterRoleBinding{
			Meta:     &secureauditv1.ObjectMeta{Name: fmt.Sprintf("crb-%d", i)},
			RoleRef:  &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: fmt.Sprintf("cr-%d", r.IntN(clusterRoles))},
			Subjects: []*secureauditv1.Subject{sub(fmt.Sprintf("ns-%d", r.IntN(namespaces)))},
		})
	}
	return snapshot.Build([]*secureauditv1.SnapshotChunk{c}, nil)
}

func objects(s *snapshot.Snapshot) int {
	return len(s.Namespaces()) + len(s.Roles()) + len(s.ClusterRoles()) + len(s.RoleBindings()) +
		len(s.ClusterRoleBindings()) + len(s.ServiceAccounts()) + len(s.Workloads())
}

// BenchmarkWhoCan measures one who-can query; the target is under 10 ms on
// 100,000 objects.
func BenchmarkWhoCan(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		s := synthetic(n)
		e := access.New(s)
		b.Run(fmt.Sprintf("objects=%d", objects(s)), func(b *testing.B) {
			queries := []access.Attributes{
				mustRequest("get", "secrets", "ns-7", ""),
				mustRequest("create", "pods/exec", "ns-3", "pod-1"),
				mustRequest("list", "secrets", "", ""),
			}
			var matches int
			cpu := cpuTime()
			for i := 0; b.Loop(); i++ {
				matches += len(e.WhoCan(queries[i%len(queries)]))
			}
			reportCPU(b, cpu)
			if matches == 0 {
				b.Fatal("no matches: the synthetic cluster grants nothing")
			}
		})
	}
}

// BenchmarkAllowed measures one access check by a user in several groups.
func BenchmarkAllowed(b *testing.B) {
	e := access.New(synthetic(100_000))
	id := access.ForUser("user-17@example.com", "group-3", "group-9")
	a := mustRequest("get", "secrets", "ns-7", "db")
	cpu := cpuTime()
	for b.Loop() {
		e.Allowed(id, a)
	}
	reportCPU(b, cpu)
}

// BenchmarkNew measures indexing a 100,000-object snapshot.
func BenchmarkNew(b *testing.B) {
	s := synthetic(100_000)
	cpu := cpuTime()
	for b.Loop() {
		access.New(s)
	}
	reportCPU(b, cpu)
}

// cpuTime returns the CPU time the process has used (all threads, user and
// system). On a machine shared with other work, CPU time per operation is
// the stable measure; wall time per operation (ns/op) includes waiting for
// a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func TestSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("large synthetic cluster")
	}
	s := synthetic(100_000)
	if got := objects(s); got < 95_000 || got > 105_000 {
		t.Errorf("synthetic(100000) has %d objects", got)
	}
	e := access.New(s)
	if len(e.WhoCan(mustRequest("get", "secrets", "ns-1", ""))) == 0 {
		t.Error("nobody can read secrets in ns-1")
	}
}
