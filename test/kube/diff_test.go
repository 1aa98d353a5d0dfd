package kube_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/rbac-agent/kubeclient"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/test/kube"
)

var (
	seed    = flag.Uint64("seed", 0, "seed of the differential test's generator (0: time-based, logged)")
	queries = flag.Int("queries", 6000, "random queries of the differential test")
)

// Pools the generator draws from. They overlap on purpose: names that are
// both a user and a ServiceAccount's user name, groups that are the
// ServiceAccount groups, subresources that exist and "*".
var (
	genNamespaces = []string{"ns-a", "ns-b", "ns-c"}
	genUsers      = []string{"alice", "bob", "carol", "system:serviceaccount:ns-a:sa-1", "system:anonymous"}
	genGroups     = []string{"dev", "ops", "system:authenticated", "system:unauthenticated", "system:serviceaccounts", "system:serviceaccounts:ns-b"}
	genSAs        = [][2]string{{"ns-a", "sa-1"}, {"ns-a", "sa-2"}, {"ns-b", "sa-1"}, {"ns-c", "sa-3"}}
	genVerbs      = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "bind", "escalate", "impersonate", "approve"}
	genGroupNames = []string{"", "apps", "batch", "rbac.authorization.k8s.io", "example.com"}
	genResources  = []string{"pods", "deployments", "secrets", "nodes", "roles", "clusterroles", "jobs", "widgets", "users", "serviceaccounts"}
	genSubs       = []string{"log", "exec", "scale", "status", "token", "*"}
	genNames      = []string{"a", "b", "c"}
	genURLs       = []string{"/healthz", "/healthz/etcd", "/metrics", "/api", "/apis/apps", "/debug/pprof/heap", "/version", "/logs/x"}
	genURLRules   = []string{"/healthz", "/healthz/*", "/metrics", "/api*", "/debug/*", "*", "/logs/*"}
	genLabels     = []string{"agg-a", "agg-b", "agg-c"}
)

// gen draws random RBAC configurations and queries.
type gen struct{ r *rand.Rand }

func (g gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// some returns 1 to n distinct elements of s, with "*" added now and then.
func (g gen) some(s []string, n int, star bool) []string {
	var out []string
	for range 1 + g.r.IntN(n) {
		if x := g.pick(s); !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	if star && g.r.IntN(8) == 0 {
		out = append(out, "*")
	}
	return out
}

func (g gen) resourceRule() rbacv1.PolicyRule {
	r := rbacv1.PolicyRule{
		Verbs:     g.some(genVerbs, 3, true),
		APIGroups: g.some(genGroupNames, 2, true),
	}
	for range 1 + g.r.IntN(3) {
		res := g.pick(genResources)
		switch g.r.IntN(6) {
		case 0:
			res += "/" + g.pick(genSubs)
		case 1:
			res = "*/" + g.pick(genSubs)
		case 2:
			if g.r.IntN(3) == 0 {
				res = "*"
			}
		}
		if !slices.Contains(r.Resources, res) {
			r.Resources = append(r.Resources, res)
		}
	}
	if g.r.IntN(4) == 0 {
		r.ResourceNames = g.some(genNames, 2, false)
	}
	return r
}

func (g gen) rules(cluster bool) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	for range 1 + g.r.IntN(3) {
		if cluster && g.r.IntN(5) == 0 {
			rules = append(rules, rbacv1.PolicyRule{Verbs: g.some([]string{"get", "post", "put", "delete"}, 2, true), NonResourceURLs: g.some(genURLRules, 2, false)})
			continue
		}
		rules = append(rules, g.resourceRule())
	}
	return rules
}

func (g gen) subjects(namespaced bool) []rbacv1.Subject {
	var out []rbacv1.Subject
	for range 1 + g.r.IntN(3) {
		switch g.r.IntN(3) {
		case 0:
			out = append(out, rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: g.pick(genUsers)})
		case 1:
			out = append(out, rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: g.pick(genGroups)})
		default:
			sa := genSAs[g.r.IntN(len(genSAs))]
			s := rbacv1.Subject{Kind: "ServiceAccount", Name: sa[1], Namespace: sa[0]}
			if namespaced && g.r.IntN(3) == 0 {
				s.Namespace = "" // defaults to the RoleBinding's namespace
			}
			out = append(out, s)
		}
	}
	return out
}

// config is one random RBAC configuration.
type config struct {
	clusterRoles []*rbacv1.ClusterRole
	roles        []*rbacv1.Role
	crbs         []*rbacv1.ClusterRoleBinding
	rbs          []*rbacv1.RoleBinding
}

func (g gen) config() config {
	var c config
	for i := range 12 {
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gen-cr-%d", i)}, Rules: g.rules(true)}
		if g.r.IntN(2) == 0 {
			cr.Labels = map[string]string{g.pick(genLabels): "true"}
			if g.r.IntN(3) == 0 {
				cr.Labels["tier"] = strconv.Itoa(g.r.IntN(2))
			}
		}
		c.clusterRoles = append(c.clusterRoles, cr)
	}
	// Aggregated roles carry no rules of their own, as upstream's: the
	// aggregation controller overwrites them. Some are themselves labelled,
	// so that aggregation chains.
	selectors := []metav1.LabelSelector{
		{MatchLabels: map[string]string{"agg-a": "true"}},
		{MatchLabels: map[string]string{"agg-b": "true", "tier": "1"}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "agg-c", Operator: metav1.LabelSelectorOpExists}}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"0"}}}},
		{MatchLabels: map[string]string{"agg-b": "true"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpDoesNotExist}}},
		{MatchLabels: map[string]string{"agg-a": "true"}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"1"}}}},
	}
	for i := range 4 {
		cr := &rbacv1.ClusterRole{
			ObjectMeta:      metav1.ObjectMeta{Name: fmt.Sprintf("gen-agg-%d", i)},
			AggregationRule: &rbacv1.AggregationRule{},
		}
		for range 1 + g.r.IntN(2) {
			cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors, selectors[g.r.IntN(len(selectors))])
		}
		if g.r.IntN(2) == 0 {
			cr.Labels = map[string]string{g.pick(genLabels): "true"}
		}
		c.clusterRoles = append(c.clusterRoles, cr)
	}
	crName := func() string {
		switch n := g.r.IntN(20); {
		case n < 14:
			return c.clusterRoles[g.r.IntN(len(c.clusterRoles))].Name
		case n < 17:
			return g.pick([]string{"view", "edit", "admin", "system:discovery", "system:basic-user"})
		default:
			return "gen-missing" // a binding to a role that does not exist
		}
	}
	for _, ns := range genNamespaces {
		for i := range 4 {
			c.roles = append(c.roles, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("gen-role-%d", i)}, Rules: g.rules(false)})
		}
		for i := range 8 {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("gen-rb-%d", i)}, Subjects: g.subjects(true)}
			if g.r.IntN(2) == 0 {
				rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: fmt.Sprintf("gen-role-%d", g.r.IntN(5))} // 4 is missing
			} else {
				rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName()}
			}
			c.rbs = append(c.rbs, rb)
		}
	}
	for i := range 10 {
		c.crbs = append(c.crbs, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("gen-crb-%d", i)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName()},
			Subjects:   g.subjects(false),
		})
	}
	return c
}

// identity draws who asks: a user with groups, a ServiceAccount, a bare
// group, or now and then a member of system:masters.
func (g gen) identity() access.Identity {
	switch g.r.IntN(10) {
	case 0, 1, 2, 3:
		var groups []string
		if g.r.IntN(2) == 0 {
			groups = g.some(genGroups, 2, false)
		}
		return access.ForUser(g.pick(genUsers), groups...)
	case 4, 5, 6:
		sa := genSAs[g.r.IntN(len(genSAs))]
		return access.ForServiceAccount(sa[0], sa[1])
	case 7, 8:
		return access.ForGroup(g.pick(genGroups))
	default:
		if g.r.IntN(4) == 0 {
			return access.ForUser("root", access.GroupMasters)
		}
		return access.Identity{Name: g.pick(genUsers)} // no groups at all
	}
}

func (g gen) attributes() access.Attributes {
	if g.r.IntN(8) == 0 {
		return access.Attributes{Verb: g.pick([]string{"get", "post", "put", "delete"}), Path: g.pick(genURLs)}
	}
	a := access.Attributes{
		ResourceRequest: true,
		Verb:            g.pick(genVerbs),
		APIGroup:        g.pick(genGroupNames),
		Resource:        g.pick(genResources),
	}
	if g.r.IntN(3) == 0 {
		a.Subresource = g.pick(genSubs[:5]) // requests name real subresources
	}
	if g.r.IntN(4) != 0 {
		a.Namespace = g.pick(append(genNamespaces, "kube-system"))
	}
	if g.r.IntN(2) == 0 {
		a.Name = g.pick(genNames)
	}
	return a
}

// TestDifferential compares the access engine with the real authorizer:
// random RBAC configurations are loaded into kube-apiserver, and random
// requests are decided by both the engine (over the snapshot the
// rbac-agent's live source collects) and a SubjectAccessReview.
//
// Aggregation: this API server runs without kube-controller-manager, so
// nothing fills in aggregated ClusterRoles. The snapshot is collected
// before they are filled, as in a manifest, and the engine resolves them
// from their selectors with its own code. The test then fills them in the
// server the way the clusterrole-aggregation controller does (each
// aggregated role's rules become the union of the rules of the roles its
// selectors match, evaluated with the upstream label-selector library,
// repeated until nothing changes) before the SubjectAccessReviews, so the
// engine's aggregation is checked against that algorithm over the real
// bootstrap roles (admin, edit, view) and the generated ones.
func TestDifferential(t *testing.T) {
	server(t) // skips when there is no API server to run
	ctx := context.Background()
	// A server of its own: the random bindings (to system:authenticated,
	// system:serviceaccounts...) would grant other tests' subjects more.
	s, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	sd := *seed
	if sd == 0 {
		sd = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d)", sd, sd)
	g := gen{rand.New(rand.NewPCG(sd, sd^0x5ecae))}
	cfg := g.config()
	load(t, admin, cfg)

	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	collected, err := collect.NewLive(kubeclient.New(admin), "diff", s.Host, v).Load(ctx)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	engine := access.New(snapshot.Build(collected.Chunks(collect.MaxChunkObjects), nil))

	if err := aggregate(ctx, admin); err != nil {
		t.Fatal(err)
	}
	settle(t, admin)

	var allowed, disagreements int
	for i := range *queries {
		id, a := g.identity(), g.attributes()
		want, err := review(ctx, admin, id, a)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		got := engine.Allowed(id, a)
		if want {
			allowed++
		}
		if got.Allowed != want {
			disagreements++
			if disagreements <= 20 {
				t.Errorf("query %d: %+v %+v: engine allowed=%v (via %v), API server allowed=%v", i, id, a, got.Allowed, got.Bindings, want)
			}
		}
	}
	t.Logf("%d queries, %d allowed by the API server, %d disagreements", *queries, allowed, disagreements)
	if disagreements > 0 {
		t.Errorf("%d disagreements in %d queries (seed %d)", disagreements, *queries, sd)
	}
	if allowed < *queries/20 {
		t.Errorf("only %d of %d queries allowed: the generator exercises too little", allowed, *queries)
	}
}

// load creates the configuration's objects.
func load(t *testing.T, c kubernetes.Interface, cfg config) {
	t.Helper()
	ctx := context.Background()
	opts := metav1.CreateOptions{}
	for _, ns := range genNamespaces {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, opts); err != nil {
			t.Fatal(err)
		}
	}
	for _, sa := range genSAs {
		if _, err := c.CoreV1().ServiceAccounts(sa[0]).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa[1]}}, opts); err != nil {
			t.Fatal(err)
		}
	}
	var jobs []func() error
	for _, o := range cfg.clusterRoles {
		jobs = append(jobs, func() error { _, err := c.RbacV1().ClusterRoles().Create(ctx, o, opts); return err })
	}
	for _, o := range cfg.roles {
		jobs = append(jobs, func() error { _, err := c.RbacV1().Roles(o.Namespace).Create(ctx, o, opts); return err })
	}
	for _, o := range cfg.crbs {
		jobs = append(jobs, func() error { _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, o, opts); return err })
	}
	for _, o := range cfg.rbs {
		jobs = append(jobs, func() error { _, err := c.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, opts); return err })
	}
	if err := parallel(8, jobs); err != nil {
		t.Fatal(err)
	}
}

// aggregate fills in aggregated ClusterRoles as the clusterrole-aggregation
// controller (k8s.io/kubernetes/pkg/controller/clusterroleaggregation) does:
// the rules of every other ClusterRole matching a selector, in name order,
// without duplicates, replacing the role's own; repeated until no role
// changes, as the controller's requeueing converges.
func aggregate(ctx context.Context, c kubernetes.Interface) error {
	for range 10 {
		list, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list clusterroles: %w", err)
		}
		roles := list.Items
		slices.SortFunc(roles, func(a, b rbacv1.ClusterRole) int { return cmpString(a.Name, b.Name) })
		changed := false
		for i := range roles {
			r := &roles[i]
			if r.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, other := range roles {
				if other.Name == r.Name || !selects(r.AggregationRule, other.Labels) {
					continue
				}
				for _, rule := range other.Rules {
					if !slices.ContainsFunc(rules, func(x rbacv1.PolicyRule) bool { return fmt.Sprint(x) == fmt.Sprint(rule) }) {
						rules = append(rules, rule)
					}
				}
			}
			if fmt.Sprint(rules) == fmt.Sprint(r.Rules) {
				continue
			}
			r.Rules = rules
			if _, err := c.RbacV1().ClusterRoles().Update(ctx, r, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("update clusterrole %s: %w", r.Name, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("aggregation did not converge")
}

func selects(rule *rbacv1.AggregationRule, l map[string]string) bool {
	for _, sel := range rule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err == nil && s.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// settle waits until the API server's authorizer, which reads RBAC objects
// through informers, has seen every object written so far: it writes a
// sentinel of each RBAC kind last and polls until a SubjectAccessReview
// allows what the sentinels grant.
func settle(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	opts := metav1.CreateOptions{}
	rule := func(res string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{"sentinel"}, Resources: []string{res}}}
	}
	user := rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "sentinel"}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"}, Rules: rule("cluster")}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "sentinel"}, Subjects: []rbacv1.Subject{user}}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().Roles("ns-a").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"}, Rules: rule("namespaced")}, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings("ns-a").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "sentinel"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "sentinel"}, Subjects: []rbacv1.Subject{user}}, opts); err != nil {
		t.Fatal(err)
	}
	id := access.Identity{Name: "sentinel"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, err := review(ctx, c, id, access.Attributes{ResourceRequest: true, Verb: "get", APIGroup: "sentinel", Resource: "cluster"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := review(ctx, c, id, access.Attributes{ResourceRequest: true, Verb: "get", APIGroup: "sentinel", Resource: "namespaced", Namespace: "ns-a"})
		if err != nil {
			t.Fatal(err)
		}
		if a && b {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the API server's authorizer did not see the sentinel bindings within 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not timing
	}
}

// review asks the API server whether id may make request a.
func review(ctx context.Context, c kubernetes.Interface, id access.Identity, a access.Attributes) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: id.Name, Groups: id.Groups}}
	if a.ResourceRequest {
		sar.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Namespace: a.Namespace, Verb: a.Verb, Group: a.APIGroup, Resource: a.Resource,
			Subresource: a.Subresource, Name: a.Name,
		}
	} else {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: a.Path, Verb: a.Verb}
	}
	out, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("subject access review: %w", err)
	}
	return out.Status.Allowed, nil
}
