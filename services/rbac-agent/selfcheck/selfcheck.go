// Package selfcheck proves, at the target boundary, that the rbac-agent's
// Kubernetes credential is no broader than its scope manifest declares (SOC 2
// CC6.2): it asks the API server what the credential may do — a
// SelfSubjectRulesReview in every namespace and SelfSubjectAccessReviews for
// a list of dangerous probes (read Secrets, create Pods, exec, impersonate,
// escalate, bind, mint tokens, approve certificates, write nodes, wildcard) —
// and compares the answers with the manifest's permissions. Anything more is
// a violation, reported with the API server's answer as evidence.
package selfcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Rule is one declared permission of the manifest.
type Rule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

// RulesFromManifest reads the Kubernetes rules of a scope manifest's
// permissions (entries with apiGroups, resources and verbs).
func RulesFromManifest(perms []map[string]any) []Rule {
	list := func(v any) []string {
		var out []string
		if xs, ok := v.([]any); ok {
			for _, x := range xs {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	var out []Rule
	for _, p := range perms {
		if _, ok := p["verbs"]; !ok {
			continue
		}
		out = append(out, Rule{APIGroups: list(p["apiGroups"]), Resources: list(p["resources"]), Verbs: list(p["verbs"])})
	}
	return out
}

// declares says whether the rules allow verb on group/resource.
func declares(rules []Rule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

// Probe is one question asked with a SelfSubjectAccessReview, cluster-wide.
type Probe struct {
	Verb, Group, Resource, Subresource string
}

func (p Probe) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	return p.Verb + " " + r
}

// Probes are the dangerous permissions always asked about.
var Probes = []Probe{
	{Verb: "get", Resource: "secrets"},
	{Verb: "list", Resource: "secrets"},
	{Verb: "watch", Resource: "secrets"},
	{Verb: "create", Resource: "pods"},
	{Verb: "create", Resource: "pods", Subresource: "exec"},
	{Verb: "create", Resource: "pods", Subresource: "attach"},
	{Verb: "patch", Resource: "pods", Subresource: "ephemeralcontainers"},
	{Verb: "delete", Resource: "pods"},
	{Verb: "create", Resource: "serviceaccounts", Subresource: "token"},
	{Verb: "impersonate", Resource: "users"},
	{Verb: "impersonate", Resource: "groups"},
	{Verb: "impersonate", Resource: "serviceaccounts"},
	{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"},
	{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
	{Verb: "create", Group: "apps", Resource: "deployments"},
	{Verb: "create", Group: "batch", Resource: "jobs"},
	{Verb: "patch", Resource: "nodes"},
	{Verb: "get", Resource: "nodes", Subresource: "proxy"},
	{Verb: "update", Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval"},
	{Verb: "create", Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"},
	{Verb: "delete", Resource: "namespaces"},
	{Verb: "*", Group: "*", Resource: "*"},
}

// everyone are rules the API server grants every authenticated user
// (system:basic-user, system:discovery, system:public-info-viewer).
func everyone(group, resource, verb string) bool {
	switch {
	case group == "authorization.k8s.io" && strings.HasPrefix(resource, "selfsubject") && verb == "create":
		return true
	case group == "authentication.k8s.io" && resource == "selfsubjectreviews" && verb == "create":
		return true
	case group == "certificates.k8s.io" && resource == "clustertrustbundles" && (verb == "get" || verb == "list" || verb == "watch"):
		// Public trust anchors, readable by every authenticated user
		// (system:basic-user) since Kubernetes 1.33.
		return true
	}
	return false
}

// Violation is one permission beyond the manifest.
type Violation struct {
	// Namespace is where the permission holds; empty for cluster-wide probes.
	Namespace string `json:"namespace,omitempty"`
	// Permission is "verb resource.group" as the API server stated it.
	Permission string `json:"permission"`
	// Source is the review that revealed it: rules or access.
	Source string `json:"source"`
}

// Report is the result of a self-check.
type Report struct {
	Namespaces int         `json:"namespaces"`
	Probes     int         `json:"probes"`
	Violations []Violation `json:"violations"`
	// Incomplete says the API server could not list every rule (its
	// evaluation was partial), which a reviewer should know.
	Incomplete bool `json:"incomplete,omitempty"`
}

// OK says whether the credential is no broader than declared.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Summary is one sentence for logs and evidence.
func (r *Report) Summary() string {
	if r.OK() {
		return fmt.Sprintf("credential no broader than the scope manifest: %d namespaces' rules and %d probes checked at the API server", r.Namespaces, r.Probes)
	}
	var perms []string
	for _, v := range r.Violations[:min(len(r.Violations), 10)] {
		p := v.Permission
		if v.Namespace != "" {
			p += " in " + v.Namespace
		}
		perms = append(perms, p)
	}
	more := ""
	if len(r.Violations) > 10 {
		more = fmt.Sprintf(" and %d more", len(r.Violations)-10)
	}
	return fmt.Sprintf("VIOLATION: the credential is broader than the scope manifest: %s%s", strings.Join(perms, "; "), more)
}

// DefaultParallelism is how many reviews Check has in flight at once.
const DefaultParallelism = 8

// CheckOption configures Check.
type CheckOption func(*checkOptions)

type checkOptions struct{ parallel int }

// WithParallelism bounds the reviews in flight at once (at least one).
func WithParallelism(n int) CheckOption {
	return func(o *checkOptions) { o.parallel = max(1, n) }
}

// Check asks the API server what the credential of client may do and
// compares it with the declared rules: a SelfSubjectRulesReview per
// namespace and a SelfSubjectAccessReview per probe, at most
// DefaultParallelism (or WithParallelism) in flight at once. The report is
// the same whatever the parallelism: violations are sorted, and the first
// failed review (in namespace, then probe order) is the error.
func Check(ctx context.Context, client kubernetes.Interface, declared []Rule, opts ...CheckOption) (*Report, error) {
	o := checkOptions{parallel: DefaultParallelism}
	for _, opt := range opts {
		opt(&o)
	}
	nsList, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list namespaces for the self-check: %w", err)
	}
	type answer struct {
		violations []Violation
		incomplete bool
		err        error
	}
	n := len(nsList.Items)
	answers := make([]answer, n+len(Probes))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	review := func(i int) answer {
		if i < n {
			ns := nsList.Items[i].Name
			rr, err := client.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
			if err != nil {
				return answer{err: fmt.Errorf("self subject rules review in %s: %w", ns, err)}
			}
			return answer{violations: ruleViolations(ns, rr.Status.ResourceRules, declared), incomplete: rr.Status.Incomplete}
		}
		p := Probes[i-n]
		ar, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource}}}, metav1.CreateOptions{})
		if err != nil {
			return answer{err: fmt.Errorf("self subject access review %s: %w", p, err)}
		}
		if ar.Status.Allowed && !(p.Subresource == "" && declares(declared, p.Group, p.Resource, p.Verb)) {
			return answer{violations: []Violation{{Permission: p.String(), Source: "access"}}}
		}
		return answer{}
	}
	for range min(o.parallel, len(answers)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(answers) {
					return
				}
				answers[i] = review(i)
				if answers[i].err != nil {
					cancel() // the check fails; stop asking
				}
			}
		})
	}
	wg.Wait()
	rep := &Report{Namespaces: n, Probes: len(Probes), Violations: []Violation{}}
	seen := map[Violation]bool{}
	for _, a := range answers {
		if a.err != nil && !errors.Is(a.err, context.Canceled) {
			return nil, a.err
		}
	}
	for _, a := range answers {
		if a.err != nil {
			return nil, a.err
		}
		rep.Incomplete = rep.Incomplete || a.incomplete
		for _, v := range a.violations {
			if !seen[v] {
				seen[v] = true
				rep.Violations = append(rep.Violations, v)
			}
		}
	}
	sort.SliceStable(rep.Violations, func(i, j int) bool {
		a, b := rep.Violations[i], rep.Violations[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Permission < b.Permission
	})
	return rep, nil
}

// ruleViolations are the rules of one namespace's SelfSubjectRulesReview
// beyond the declared ones and those every user holds.
func ruleViolations(ns string, rules []authorizationv1.ResourceRule, declared []Rule) []Violation {
	var out []Violation
	for _, rule := range rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, verb := range rule.Verbs {
					if everyone(g, res, verb) || declares(declared, g, res, verb) {
						continue
					}
					perm := verb + " " + res
					if g != "" {
						perm += "." + g
					}
					if len(rule.ResourceNames) > 0 {
						perm += " (names " + strings.Join(rule.ResourceNames, ",") + ")"
					}
					out = append(out, Violation{Namespace: ns, Permission: perm, Source: "rules"})
				}
			}
		}
	}
	return out
}

// presented is the JSON form of run.CredentialCheck, the header the
// orchestrator reads.
type presented struct {
	Outcome    string      `json:"outcome"`
	Summary    string      `json:"summary"`
	Violations []Violation `json:"findings,omitempty"`
}

// Presented renders a check (or its failure) as the rbac-agent presents it
// to the orchestrator, with at most 20 violations named.
func Presented(rep *Report, err error) string {
	p := presented{Outcome: "pass"}
	switch {
	case err != nil:
		p.Outcome, p.Summary = "error", "the credential self-check could not run: "+err.Error()
	case !rep.OK():
		p.Outcome, p.Summary, p.Violations = "violation", rep.Summary(), rep.Violations[:min(len(rep.Violations), 20)]
	default:
		p.Summary = rep.Summary()
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// NotApplicable is presented when the agent reads a snapshot file and uses
// no Kubernetes credential.
const NotApplicable = `{"outcome":"not-applicable","summary":"snapshot file: no Kubernetes credential in use"}`
