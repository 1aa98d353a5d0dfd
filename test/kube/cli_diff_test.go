package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"secureaudit.dev/cli/command"
	"secureaudit.dev/services/risk-agent/access"
	riskdiscovery "secureaudit.dev/services/risk-agent/discovery"
	"secureaudit.dev/test/kube"
)

// Switches for two families of generated cases, both on: aggregated roles
// with rules of their own (the engine replaces them as the controller does)
// and objects at the edges of the API server's validation (the loader
// accepts whatever the API server does). Turning one off narrows the test
// when bisecting a disagreement.
const (
	// includeAggregatedOwnRules gives aggregated ClusterRoles rules of their
	// own, which the aggregation controller replaces.
	includeAggregatedOwnRules = true
	// includeLoaderEdgeCases adds objects the API server accepts at the
	// edges of its validation: empty strings in verbs, resources,
	// resourceNames and nonResourceURLs, a 300-character role name, a rule
	// with 71 verbs, ServiceAccount subjects in uppercase, dotted or long
	// namespaces, 300 annotations and a 70 KiB annotation.
	includeLoaderEdgeCases = true
)

var cliQueries = flag.Int("cli-queries", 3000, "can-i queries of the CLI differential test (who-can adds a tenth more, each checked for several identities)")

// envDiffSeed reuses a seed of the CLI differential test (as -seed does).
const envDiffSeed = "SECUREAUDIT_DIFF_SEED"

// cliGen draws configurations and questions over the server's discovery.
type cliGen struct {
	r   *rand.Rand
	res []riskdiscovery.Resource
}

func (g cliGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

var (
	cliNamespaces = []string{"ns-a", "ns-b", "x", strings.Repeat("n", 63), "0-9"}
	cliSAs        = [][2]string{{"ns-a", "sa-1"}, {"ns-a", "sa.dotted"}, {"ns-b", "sa-1"}, {"x", "s"}, {strings.Repeat("n", 63), "long"}}
	cliUsers      = []string{"alice", "bob", "system:serviceaccount:ns-a:sa-1", "system:serviceaccount:ns-b:sa-1", "system:serviceaccount:a:b:c",
		"system:serviceaccount:NS:x", "system:serviceaccount:ns-a:sa.dotted", "system:anonymous"}
	cliGroups = []string{"dev", "ops", "system:authenticated", "system:unauthenticated", "system:serviceaccounts",
		"system:serviceaccounts:ns-a", "system:serviceaccounts:ns-b"}
	cliVerbs   = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "bind", "escalate", "impersonate", "approve", "use"}
	cliNames   = []string{"a", "b", "obj.with.dots"}
	cliURLs    = []string{"/healthz", "/healthz/etcd", "/metrics", "/api", "/apis/apps", "/version", "/logs/x"}
	cliURLRule = []string{"/healthz", "/healthz/*", "/metrics", "/api*", "*", "/logs/*"}
	cliLabels  = []string{"agg-a", "agg-b", "agg-c"}
	// authzOnly are resources the API server authorizes but does not serve.
	cliAuthzOnly = []struct{ arg, group, resource, sub string }{
		{"users", "", "users", ""},
		{"groups", "", "groups", ""},
		{"uids.authentication.k8s.io", "authentication.k8s.io", "uids", ""},
		{"userextras.authentication.k8s.io/scopes", "authentication.k8s.io", "userextras", "scopes"},
		{"signers.certificates.k8s.io", "certificates.k8s.io", "signers", ""},
	}
)

// rule draws a resource rule over real resources of discovery.
func (g cliGen) rule(edges bool) rbacv1.PolicyRule {
	var r rbacv1.PolicyRule
	for range 1 + g.r.IntN(3) {
		r.Verbs = appendNew(r.Verbs, g.pick(cliVerbs))
	}
	for range 1 + g.r.IntN(3) {
		x := g.res[g.r.IntN(len(g.res))]
		r.APIGroups = appendNew(r.APIGroups, x.Group)
		name := x.Name
		switch n := g.r.IntN(10); {
		case n < 2 && len(x.Subresources) > 0:
			name += "/" + g.pick(x.Subresources)
		case n == 2 && len(x.Subresources) > 0:
			name = "*/" + g.pick(x.Subresources)
		case n == 3:
			name = "*"
		}
		r.Resources = appendNew(r.Resources, name)
	}
	if g.r.IntN(10) == 0 {
		r.Verbs = append(r.Verbs, "*")
	}
	if g.r.IntN(10) == 0 {
		r.APIGroups = append(r.APIGroups, "*")
	}
	if g.r.IntN(4) == 0 {
		r.ResourceNames = []string{g.pick(cliNames)}
	}
	if edges && g.r.IntN(4) == 0 {
		switch g.r.IntN(3) {
		case 0:
			r.Verbs = append(r.Verbs, "")
		case 1:
			r.Resources = append(r.Resources, "")
		default:
			r.ResourceNames = append(r.ResourceNames, "")
		}
	}
	return r
}

func appendNew(s []string, x string) []string {
	if slices.Contains(s, x) {
		return s
	}
	return append(s, x)
}

func (g cliGen) rules(cluster, edges bool) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	for range 1 + g.r.IntN(4) {
		if cluster && g.r.IntN(6) == 0 {
			urls := []string{g.pick(cliURLRule)}
			if edges && g.r.IntN(3) == 0 {
				urls = append(urls, "")
			}
			rules = append(rules, rbacv1.PolicyRule{Verbs: []string{g.pick([]string{"get", "post", "*"})}, NonResourceURLs: urls})
			continue
		}
		rules = append(rules, g.rule(edges))
	}
	return rules
}

func (g cliGen) subjects(namespaced bool) []rbacv1.Subject {
	var out []rbacv1.Subject
	for range 1 + g.r.IntN(3) {
		switch g.r.IntN(3) {
		case 0:
			out = append(out, rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: g.pick(cliUsers)})
		case 1:
			out = append(out, rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: g.pick(cliGroups)})
		default:
			sa := cliSAs[g.r.IntN(len(cliSAs))]
			s := rbacv1.Subject{Kind: "ServiceAccount", Name: sa[1], Namespace: sa[0]}
			if namespaced && g.r.IntN(3) == 0 {
				s.Namespace = ""
			}
			if includeLoaderEdgeCases && g.r.IntN(8) == 0 {
				s.Namespace = g.pick([]string{"NS", "a.b", strings.Repeat("l", 100)})
			}
			out = append(out, s)
		}
	}
	return out
}

// cliConfig returns the objects of one configuration, namespaces and
// ServiceAccounts first.
func (g cliGen) config() []any {
	var objs []any
	for _, ns := range cliNamespaces {
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	for _, sa := range cliSAs {
		objs = append(objs, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa[0], Name: sa[1]}})
	}
	var crNames []string
	for i := range 14 {
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cli-cr-%d", i)}, Rules: g.rules(true, includeLoaderEdgeCases)}
		if g.r.IntN(2) == 0 {
			cr.Labels = map[string]string{g.pick(cliLabels): "true"}
			if g.r.IntN(3) == 0 {
				cr.Labels["tier"] = strconv.Itoa(g.r.IntN(2))
			}
		}
		objs = append(objs, cr)
		crNames = append(crNames, cr.Name)
	}
	// Many rules in one role.
	many := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cli-many-rules"}}
	for range 80 {
		many.Rules = append(many.Rules, g.rule(false))
	}
	objs = append(objs, many)
	crNames = append(crNames, many.Name)
	// The longest name the loader takes (the API server takes longer ones:
	// includeLoaderEdgeCases).
	long := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cli-" + strings.Repeat("n", 249), Labels: map[string]string{g.pick(cliLabels): "true"}},
		Rules: g.rules(true, false)}
	objs = append(objs, long)
	crNames = append(crNames, long.Name)
	if includeLoaderEdgeCases {
		longer := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cli-" + strings.Repeat("long", 74)}, Rules: g.rules(true, true)}
		var verbs []string
		for i := range 71 {
			verbs = append(verbs, fmt.Sprintf("verb%d", i))
		}
		verbs[0] = "get"
		wide := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "cli-wide", Annotations: map[string]string{"big": strings.Repeat("x", 70*1024)}},
			Rules:      []rbacv1.PolicyRule{{Verbs: verbs, APIGroups: []string{""}, Resources: []string{"configmaps"}}},
		}
		for i := range 300 {
			wide.Annotations[fmt.Sprintf("a%d", i)] = "v"
		}
		objs = append(objs, longer, wide)
		crNames = append(crNames, longer.Name, wide.Name)
	}
	selectors := []metav1.LabelSelector{
		{MatchLabels: map[string]string{"agg-a": "true"}},
		{MatchLabels: map[string]string{"agg-b": "true", "tier": "1"}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "agg-c", Operator: metav1.LabelSelectorOpExists}}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"0"}}}},
		{MatchLabels: map[string]string{"nothing": "matches"}},
	}
	var aggs []*rbacv1.ClusterRole
	for i := range 5 {
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cli-agg-%d", i)}, AggregationRule: &rbacv1.AggregationRule{}}
		for range 1 + g.r.IntN(2) {
			cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors, selectors[g.r.IntN(len(selectors))])
		}
		if includeAggregatedOwnRules && g.r.IntN(2) == 0 {
			cr.Rules = g.rules(true, false)
		}
		if g.r.IntN(2) == 0 {
			cr.Labels = map[string]string{g.pick(cliLabels): "true"}
		}
		aggs = append(aggs, cr)
	}
	// A cycle of aggregated roles selecting each other never settles in the
	// controller (README: the order-dependent case upstream leaves), so the
	// generator breaks every cycle by taking the labels off one of its roles.
	breakAggregationCycles(aggs)
	for _, cr := range aggs {
		objs = append(objs, cr)
		crNames = append(crNames, cr.Name)
	}
	crName := func() string {
		if g.r.IntN(6) == 0 {
			return g.pick([]string{"view", "edit", "admin", "system:discovery", "cli-missing"})
		}
		return g.pick(crNames)
	}
	for _, ns := range cliNamespaces {
		for i := range 3 {
			objs = append(objs, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cli-role-%d", i)}, Rules: g.rules(false, includeLoaderEdgeCases)})
		}
		for i := range 5 {
			rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cli-rb-%d", i)}, Subjects: g.subjects(true)}
			if g.r.IntN(2) == 0 {
				rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: fmt.Sprintf("cli-role-%d", g.r.IntN(4))}
			} else {
				rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName()}
			}
			objs = append(objs, rb)
		}
	}
	for i := range 10 {
		objs = append(objs, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cli-crb-%d", i)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName()},
			Subjects:   g.subjects(false),
		})
	}
	return objs
}

// create creates objs in order, namespaces and ServiceAccounts before the
// RBAC objects.
func create(ctx context.Context, c kubernetes.Interface, objs []any) error {
	opts := metav1.CreateOptions{}
	var jobs []func() error
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Namespace:
			_, err = c.CoreV1().Namespaces().Create(ctx, o, opts)
		case *corev1.ServiceAccount:
			_, err = c.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, opts)
		case *rbacv1.ClusterRole:
			jobs = append(jobs, func() error { _, err := c.RbacV1().ClusterRoles().Create(ctx, o, opts); return err })
		case *rbacv1.Role:
			jobs = append(jobs, func() error { _, err := c.RbacV1().Roles(o.Namespace).Create(ctx, o, opts); return err })
		case *rbacv1.ClusterRoleBinding:
			jobs = append(jobs, func() error { _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, o, opts); return err })
		case *rbacv1.RoleBinding:
			jobs = append(jobs, func() error { _, err := c.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, opts); return err })
		}
		if err != nil {
			return err
		}
	}
	return parallel(4, jobs)
}

// objectKey names an object by kind, namespace and name.
func objectKey(o any) string {
	m := o.(metav1.Object)
	return fmt.Sprintf("%T/%s/%s", o, m.GetNamespace(), m.GetName())
}

// kubectlList writes items as `kubectl get ... -o json` prints several
// kinds: a v1 List whose items carry apiVersion and kind, without
// managedFields.
func kubectlList(path string, items []any) error {
	var raw []json.RawMessage
	for _, it := range items {
		var gvk schema.GroupVersionKind
		switch o := it.(type) {
		case *corev1.Namespace:
			gvk = corev1.SchemeGroupVersion.WithKind("Namespace")
			o.ManagedFields = nil
		case *corev1.ServiceAccount:
			gvk = corev1.SchemeGroupVersion.WithKind("ServiceAccount")
			o.ManagedFields = nil
		case *rbacv1.ClusterRole:
			gvk = rbacv1.SchemeGroupVersion.WithKind("ClusterRole")
			o.ManagedFields = nil
		case *rbacv1.Role:
			gvk = rbacv1.SchemeGroupVersion.WithKind("Role")
			o.ManagedFields = nil
		case *rbacv1.ClusterRoleBinding:
			gvk = rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding")
			o.ManagedFields = nil
		case *rbacv1.RoleBinding:
			gvk = rbacv1.SchemeGroupVersion.WithKind("RoleBinding")
			o.ManagedFields = nil
		default:
			return fmt.Errorf("kubectlList: %T", it)
		}
		it.(interface{ GetObjectKind() schema.ObjectKind }).GetObjectKind().SetGroupVersionKind(gvk)
		b, err := json.Marshal(it)
		if err != nil {
			return err
		}
		raw = append(raw, b)
	}
	data, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": raw, "metadata": map[string]string{"resourceVersion": ""}}, "", "    ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// dump lists what `kubectl get namespaces,serviceaccounts,roles,rolebindings,
// clusterroles,clusterrolebindings -A -o json` lists.
func dump(ctx context.Context, c kubernetes.Interface) ([]any, error) {
	var out []any
	all := metav1.ListOptions{}
	nss, err := c.CoreV1().Namespaces().List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range nss.Items {
		out = append(out, &nss.Items[i])
	}
	sas, err := c.CoreV1().ServiceAccounts("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range sas.Items {
		out = append(out, &sas.Items[i])
	}
	roles, err := c.RbacV1().Roles("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range roles.Items {
		out = append(out, &roles.Items[i])
	}
	rbs, err := c.RbacV1().RoleBindings("").List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range rbs.Items {
		out = append(out, &rbs.Items[i])
	}
	crs, err := c.RbacV1().ClusterRoles().List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range crs.Items {
		out = append(out, &crs.Items[i])
	}
	crbs, err := c.RbacV1().ClusterRoleBindings().List(ctx, all)
	if err != nil {
		return nil, err
	}
	for i := range crbs.Items {
		out = append(out, &crbs.Items[i])
	}
	return out, nil
}

// quiesce waits until the aggregation controller has stopped writing
// ClusterRoles: no ClusterRole changed for two seconds.
func quiesce(ctx context.Context, c kubernetes.Interface) error {
	last, since := "", time.Now()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		l, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, r := range l.Items {
			b.WriteString(r.Name + "=" + r.ResourceVersion + ";")
		}
		if b.String() != last {
			last, since = b.String(), time.Now()
		} else if time.Since(since) > 2*time.Second {
			return nil
		}
		time.Sleep(200 * time.Millisecond) // polling a condition
	}
	return fmt.Errorf("ClusterRoles still changing after a minute")
}

// kubectlMapper resolves resource arguments as kubectl auth can-i does
// (its resourceFor over the shortcut expander and discovery RESTMapper),
// the oracle for what a question means.
type kubectlMapper struct{ m meta.RESTMapper }

func (k kubectlMapper) resolve(arg string) (schema.GroupVersionResource, bool, error) {
	full, gr := schema.ParseResourceArg(strings.ToLower(arg))
	var gvr schema.GroupVersionResource
	if full != nil {
		gvr, _ = k.m.ResourceFor(*full)
	}
	if gvr.Empty() {
		var err error
		if gvr, err = k.m.ResourceFor(gr.WithVersion("")); err != nil {
			return gvr, false, err
		}
	}
	gvk, err := k.m.KindFor(gvr)
	if err != nil {
		return gvr, false, err
	}
	mapping, err := k.m.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return gvr, false, err
	}
	return gvr, mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// question is one can-i or who-can question: the CLI's arguments and the
// attributes the API server is asked.
type question struct {
	args []string // after the command and --snapshot
	attr authorizationv1.ResourceAttributes
	url  *authorizationv1.NonResourceAttributes
}

// forms are the ways kubectl lets a user name resource r, without the
// short names that kubectl expands differently from run to run
// (sharedShortNames).
func forms(r riskdiscovery.Resource, shared map[string]bool) []string {
	out := []string{r.Name, r.Name + "." + r.Group, r.Name + "." + r.Version + "." + r.Group}
	if r.Group == "" {
		out = out[:1]
	}
	for _, n := range append([]string{r.SingularName, r.Kind}, r.ShortNames...) {
		if n != "" && !shared[n] {
			out = append(out, n)
			if r.Group != "" {
				out = append(out, n+"."+r.Group)
			}
		}
	}
	return out
}

// question draws a request; the i-th of the run names the i-th resource of
// discovery (every one at least once), later ones a random one.
func (g cliGen) question(t *testing.T, k kubectlMapper, i int) question {
	verb := g.pick(cliVerbs)
	if g.r.IntN(10) == 0 {
		u := &authorizationv1.NonResourceAttributes{Verb: g.pick([]string{"get", "post"}), Path: g.pick(cliURLs)}
		return question{args: []string{u.Verb, u.Path}, url: u}
	}
	var q question
	ns, name := "", ""
	if g.r.IntN(4) != 0 {
		ns = g.pick(append(slices.Clone(cliNamespaces), "kube-system"))
	}
	if g.r.IntN(2) == 0 {
		name = g.pick(cliNames)
	}
	switch n := g.r.IntN(20); {
	case n == 0:
		a := cliAuthzOnly[g.r.IntN(len(cliAuthzOnly))]
		q.args = []string{verb, a.arg}
		q.attr = authorizationv1.ResourceAttributes{Verb: verb, Group: a.group, Resource: a.resource, Subresource: a.sub, Name: name}
	case n == 1:
		q.args = []string{verb, "*"}
		q.attr = authorizationv1.ResourceAttributes{Verb: verb, Resource: "*", Namespace: ns, Name: name}
	default:
		r := g.res[g.r.IntN(len(g.res))]
		if i < len(g.res) {
			r = g.res[i]
		}
		shared := sharedShortNames(g.res)
		arg := g.pick(forms(r, shared))
		gvr, namespaced, err := k.resolve(arg)
		if err != nil {
			t.Logf("kubectl's RESTMapper cannot read %q (%v): asking with the plural", arg, err)
			arg = forms(r, shared)[0]
			if gvr, namespaced, err = k.resolve(arg); err != nil {
				t.Fatalf("kubectl's RESTMapper cannot read %q: %v", arg, err)
			}
		}
		q.attr = authorizationv1.ResourceAttributes{Verb: verb, Group: gvr.Group, Resource: gvr.Resource, Name: name}
		if namespaced {
			q.attr.Namespace = ns
		}
		if len(r.Subresources) > 0 && g.r.IntN(3) == 0 && gvr.GroupResource() == (schema.GroupResource{Group: r.Group, Resource: r.Name}) {
			q.attr.Subresource = g.pick(r.Subresources)
			if g.r.IntN(2) == 0 {
				arg += "/" + q.attr.Subresource
			} else {
				q.args = append(q.args, "--subresource", q.attr.Subresource)
			}
		}
		q.args = append(q.args, verb, arg)
	}
	if name != "" {
		q.args = append(q.args, name)
	}
	if ns != "" {
		q.args = append(q.args, "-n", ns)
	}
	return q
}

// identity draws --as and --as-group.
func (g cliGen) identity() (user string, groups []string) {
	user = g.pick(cliUsers)
	if g.r.IntN(2) == 0 {
		for range 1 + g.r.IntN(2) {
			groups = appendNew(groups, g.pick(cliGroups))
		}
	}
	return user, groups
}

// cli runs the secureaudit command line in-process.
func cli(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = command.Execute(args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestDifferentialCLI asks the questions a user asks, the way the user asks
// them, and compares the answers with the API server's:
//
//   - a random configuration over every built-in resource of discovery, with
//     aggregated ClusterRoles, long names, many rules and odd namespaces (and
//     the cases gated above), is created in a kube-apiserver beside which the
//     upstream clusterrole-aggregation controller runs (kube.StartAggregation);
//   - the cluster is dumped as `kubectl get ... -A -o json` dumps it (live.json),
//     and the generated objects are written beside the server's bootstrap
//     ClusterRoles as manifests, before aggregation (manifest/);
//   - `secureaudit can-i --as U [--as-group G] VERB RESOURCE [NAME] -n NS
//     --snapshot PATH` runs in-process (command.Execute), RESOURCE in one of
//     kubectl's forms (short, singular, kind, .group, .version.group,
//     /subresource or --subresource), and is compared with a
//     SelfSubjectAccessReview made with the same impersonation kubectl
//     auth can-i --as makes, on the attributes kubectl's RESTMapper reads;
//   - `secureaudit who-can` runs likewise, and for several identities a
//     SubjectAccessReview is compared with whether a listed subject is theirs.
//
// The seed is logged; -seed or SECUREAUDIT_DIFF_SEED reuses one.
func TestDifferentialCLI(t *testing.T) {
	server(t)
	ctx := context.Background()
	s, err := kube.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	stopAgg, err := s.StartAggregation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopAgg)
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	sd := *seed
	if env := os.Getenv(envDiffSeed); env != "" && sd == 0 {
		if sd, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatalf("%s: %v", envDiffSeed, err)
		}
	}
	if sd == 0 {
		sd = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d or %s=%d)", sd, sd, envDiffSeed, sd)
	t.Logf("gated cases: includeAggregatedOwnRules=%v includeLoaderEdgeCases=%v", includeAggregatedOwnRules, includeLoaderEdgeCases)

	g := cliGen{r: rand.New(rand.NewPCG(sd, sd^0xc11)), res: liveDiscovery(t, s)}
	objs := g.config()
	// Every identity may ask the API server about itself (the oracle below
	// asks as the impersonated user): without it, system:basic-user grants
	// that to system:authenticated only. It is part of the cluster like any
	// other binding, in the dumps and the manifests.
	if err := create(ctx, admin, []any{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "self-review"}, Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "self-review"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "self-review"},
			Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := create(ctx, admin, objs); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := quiesce(ctx, admin); err != nil {
		t.Fatal(err)
	}
	settle(t, admin)

	dir := t.TempDir()
	live := filepath.Join(dir, "live.json")
	dumped, err := dump(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := kubectlList(live, dumped); err != nil {
		t.Fatal(err)
	}
	// Manifests: the generated objects as written (aggregated roles not
	// filled in) beside the cluster's own objects (the bootstrap roles and
	// bindings, kube-system), as a repository of manifests applied to this
	// cluster would be read with them.
	manifest := filepath.Join(dir, "manifest")
	if err := os.Mkdir(manifest, 0o700); err != nil {
		t.Fatal(err)
	}
	generated := map[string]bool{}
	for _, o := range objs {
		generated[objectKey(o)] = true
	}
	var bootstrap []any
	for _, o := range dumped {
		if !generated[objectKey(o)] {
			bootstrap = append(bootstrap, o)
		}
	}
	if err := kubectlList(filepath.Join(manifest, "bootstrap.json"), bootstrap); err != nil {
		t.Fatal(err)
	}
	if err := kubectlList(filepath.Join(manifest, "generated.json"), objs); err != nil {
		t.Fatal(err)
	}

	dc, err := discovery.NewDiscoveryClientForConfig(s.Config(s.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	cached := memory.NewMemCacheClient(dc)
	k := kubectlMapper{restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)}
	var mu sync.Mutex
	impersonated := map[string]kubernetes.Interface{}
	selfReview := func(user string, groups []string, q question) (bool, error) {
		key := user + "\x00" + strings.Join(groups, "\x00")
		mu.Lock()
		c, ok := impersonated[key]
		if !ok {
			cfg := s.Config(s.AdminToken)
			cfg.Impersonate.UserName = user
			cfg.Impersonate.Groups = groups
			var err error
			if c, err = kubernetes.NewForConfig(cfg); err != nil {
				mu.Unlock()
				return false, err
			}
			impersonated[key] = c
		}
		mu.Unlock()
		ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{NonResourceAttributes: q.url}}
		if q.url == nil {
			attr := q.attr
			ssar.Spec.ResourceAttributes = &attr
		}
		out, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("self subject access review as %s %v: %w", user, groups, err)
		}
		return out.Status.Allowed, nil
	}

	// The questions are drawn first, in order, so that a seed replays them;
	// they are then asked by two workers, and reported in order.
	type job struct {
		args   []string
		user   string
		groups []string
		q      question
		ids    []access.Identity // who-can: the identities checked
	}
	paths := []string{live, manifest}
	var jobs []job
	for i := range *cliQueries {
		user, groups := g.identity()
		q := g.question(t, k, i/2)
		args := []string{"can-i", "--snapshot", paths[i%2], "--as", user}
		for _, gr := range groups {
			args = append(args, "--as-group", gr)
		}
		jobs = append(jobs, job{args: append(args, q.args...), user: user, groups: groups, q: q})
	}
	canI := len(jobs)
	for i := range *cliQueries / 10 {
		q := g.question(t, k, len(g.res)+i)
		if q.url != nil {
			continue
		}
		j := job{args: append([]string{"who-can", "--snapshot", paths[i%2]}, q.args...), q: q}
		for range 5 {
			j.ids = append(j.ids, g.whoIdentity())
		}
		jobs = append(jobs, j)
	}
	type result struct {
		problems []string
		allowed  int
		checks   int
	}
	results := make([]result, len(jobs))
	run := func(i int) result {
		var res result
		j := jobs[i]
		out, errOut, code := cli(j.args...)
		cmdline := "secureaudit " + strings.Join(j.args, " ")
		if code != 0 {
			res.problems = append(res.problems, fmt.Sprintf("%s: exit %d: %s (%+v %+v)", cmdline, code, strings.TrimSpace(errOut), j.q.attr, j.q.url))
			return res
		}
		if j.args[0] == "can-i" {
			want, err := selfReview(j.user, j.groups, j.q)
			if err != nil {
				res.problems = append(res.problems, err.Error())
				return res
			}
			res.checks = 1
			if want {
				res.allowed = 1
			}
			got := strings.HasPrefix(out, "yes\n")
			switch {
			case !got && out != "no\n":
				res.problems = append(res.problems, fmt.Sprintf("%s: unexpected output %q", cmdline, out))
			case got != want:
				res.problems = append(res.problems, fmt.Sprintf("%s: says %v (%s), API server (impersonating, %+v %+v) allowed=%v",
					cmdline, got, strings.TrimSpace(out), j.q.attr, j.q.url, want))
			}
			return res
		}
		listed := parseWhoCan(out)
		for _, id := range j.ids {
			want, err := review(ctx, admin, id, access.Attributes{ResourceRequest: true, Verb: j.q.attr.Verb, APIGroup: j.q.attr.Group,
				Resource: j.q.attr.Resource, Subresource: j.q.attr.Subresource, Namespace: j.q.attr.Namespace, Name: j.q.attr.Name})
			if err != nil {
				res.problems = append(res.problems, err.Error())
				continue
			}
			res.checks++
			if got := listed.includes(id); got != want {
				res.problems = append(res.problems, fmt.Sprintf("%s: lists %s %v: %v, API server allowed=%v\n%s", cmdline, id.Name, id.Groups, got, want, out))
			}
		}
		return res
	}
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range next {
				results[i] = run(i)
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()

	var asked, allowed, checks, disagreements int
	for i, r := range results {
		if i < canI {
			asked++
			allowed += r.allowed
		}
		checks += r.checks
		for _, p := range r.problems {
			disagreements++
			t.Error(p)
		}
	}
	t.Logf("%d can-i questions (%d allowed by the API server), %d who-can questions; %d comparisons with the API server in %s; %d disagreements",
		asked, allowed, len(jobs)-canI, checks, time.Since(start).Round(time.Millisecond), disagreements)
	if *cliQueries >= 3000 && checks < 3000 {
		t.Errorf("only %d comparisons", checks)
	}
	if allowed < asked/20 {
		t.Errorf("only %d of %d questions allowed: the generator exercises too little", allowed, asked)
	}
	if disagreements > 0 {
		t.Errorf("%d disagreements (seed %d)", disagreements, sd)
	}
}

// whoIdentity draws an identity as the authenticator would give it.
func (g cliGen) whoIdentity() access.Identity {
	switch g.r.IntN(3) {
	case 0:
		sa := cliSAs[g.r.IntN(len(cliSAs))]
		return access.ForServiceAccount(sa[0], sa[1])
	default:
		user, groups := g.identity()
		return access.ForUser(user, groups...)
	}
}

// whoCanList is who-can's table: the subjects it lists.
type whoCanList struct{ users, groups, sas []string }

var whoCanLine = regexp.MustCompile(`^(User|Group|ServiceAccount)\s{2,}(\S+)\s{2,}`)

func parseWhoCan(out string) whoCanList {
	var l whoCanList
	for _, line := range strings.Split(out, "\n") {
		m := whoCanLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "User":
			l.users = append(l.users, m[2])
		case "Group":
			l.groups = append(l.groups, m[2])
		case "ServiceAccount":
			l.sas = append(l.sas, m[2])
		}
	}
	return l
}

// includes reports whether a listed subject is id, as the RBAC authorizer
// matches subjects (system:masters is listed as always allowed).
func (l whoCanList) includes(id access.Identity) bool {
	if slices.Contains(l.users, id.Name) {
		return true
	}
	for _, g := range id.Groups {
		if slices.Contains(l.groups, g) {
			return true
		}
	}
	for _, sa := range l.sas {
		ns, name, _ := strings.Cut(sa, "/")
		if access.ServiceAccountUser(ns, name) == id.Name {
			return true
		}
	}
	return false
}

// breakAggregationCycles takes the labels off aggregated roles until no
// role can reach itself through the roles its selectors match (a role never
// selects itself: the controller skips it).
func breakAggregationCycles(aggs []*rbacv1.ClusterRole) {
	selects := func(a, b *rbacv1.ClusterRole) bool {
		if a == b {
			return false
		}
		for _, sel := range a.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err == nil && s.Matches(labels.Set(b.Labels)) {
				return true
			}
		}
		return false
	}
	for {
		var cyclic *rbacv1.ClusterRole
		for _, start := range aggs {
			seen := map[*rbacv1.ClusterRole]bool{}
			stack := []*rbacv1.ClusterRole{start}
			for len(stack) > 0 && cyclic == nil {
				cur := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				for _, next := range aggs {
					if !selects(cur, next) {
						continue
					}
					if next == start {
						cyclic = start
						break
					}
					if !seen[next] {
						seen[next] = true
						stack = append(stack, next)
					}
				}
			}
			if cyclic != nil {
				break
			}
		}
		if cyclic == nil {
			return
		}
		cyclic.Labels = nil
	}
}
