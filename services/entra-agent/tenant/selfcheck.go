package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	platformrun "secureaudit.dev/platform/run"
	"secureaudit.dev/services/entra-agent/directory"
)

// armScope is the token scope of Azure Resource Manager.
const armScope = "https://management.core.windows.net//.default"

// Declared are the permissions the agent's scope manifest declares: the
// Graph application permissions and the ARM operations of its credential.
type Declared struct {
	Graph []string
	ARM   []string
}

// DeclaredFrom reads the manifest's spec.permissions entries
// ({graph: [...]} and {arm: [...]}).
func DeclaredFrom(perms []map[string]any) Declared {
	var d Declared
	list := func(v any) []string {
		var out []string
		if l, ok := v.([]any); ok {
			for _, x := range l {
				if s, ok := x.(string); ok && s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	for _, p := range perms {
		d.Graph = append(d.Graph, list(p["graph"])...)
		d.ARM = append(d.ARM, list(p["arm"])...)
	}
	return d
}

// DefaultCheckInterval is how often a Monitor checks the credential again.
const DefaultCheckInterval = 10 * time.Minute

// maxNamed bounds the clusters a presented summary names one by one: the
// result travels in a response header.
const maxNamed = 10

// maxFindings bounds the findings presented.
const maxFindings = 20

// checkTimeout bounds the check of a cluster first resolved.
const checkTimeout = 2 * time.Minute

// MaxCheckedClusters bounds the AKS clusters a Monitor checks and keeps,
// the configured one included: a caller naming ever new resource IDs (the
// orchestrator is authenticated, but may be misconfigured or compromised)
// must not grow the agent's memory, and its periodic re-check, without
// limit. A request naming a new cluster beyond it is refused (a
// directory.ClusterError naming the bound, ResourceExhausted) rather than
// evicting a cluster already checked: the presented result is the
// evidence that the credential is no broader than declared at every
// cluster the agent answered for, and an eviction would drop a cluster
// from it, a violation included, so that naming enough other clusters
// would turn a violation into a pass. Refused, the audit that named the
// cluster fails closed and says why. 1,024 is well above a tenant's fleet
// (the fleet issue's target is hundreds of clusters, each tenant with its
// own agent). The agent's restart empties the set.
const MaxCheckedClusters = 1024

// CheckCredential proves the agent's own credential no broader than its
// manifest declares at the configured cluster (Config.ClusterID): one
// check of a new Monitor. The agent itself keeps a Monitor, which covers
// every cluster it is asked to resolve.
func (s *Source) CheckCredential(ctx context.Context, d Declared) platformrun.CredentialCheck {
	return NewMonitor(s, d, s.log).Check(ctx)
}

// Monitor keeps the entra-agent's credential self-check (SOC 2 CC6.2)
// for every AKS cluster the agent reads. The Graph application
// permissions in its Graph token must all be declared in its manifest, and
// at each cluster every Azure role assigned to it at, above or below the
// cluster (listed for its object ID, the oid claim of its ARM token) must
// allow nothing but declared operations and reads: an action that writes,
// deletes or acts (listClusterAdminCredential/action among them), or any
// data action, is a violation. Reads of other resource types are
// tolerated: Reader, the read-only built-in role, grants */read.
//
// The configured cluster is checked by Check (at start); a cluster a
// request names is checked when it is first resolved, before that answer
// is returned (the Monitor is the Source the server resolves through);
// Run checks the Graph permissions and every cluster known again every
// interval. Results are kept per cluster, and Presented is the worst of
// them (violation, then error, then pass), naming the clusters in
// violation. It keeps at most MaxCheckedClusters clusters, and refuses a
// request naming a new one beyond them.
type Monitor struct {
	src      *Source
	declared Declared
	log      *slog.Logger
	interval time.Duration

	// maxClusters bounds clusters (MaxCheckedClusters).
	maxClusters int

	mu       sync.Mutex
	graph    *partCheck
	clusters map[string]*partCheck // lower-case cluster resource ID
	latest   atomic.Pointer[string]
}

// partCheck is the latest result of one part of the check: the Graph
// permissions, or the Azure role assignments at one cluster.
type partCheck struct {
	id string // the cluster's resource ID, empty for Graph
	// ready is closed once the first check of the part finished and was
	// presented; started says one has begun.
	ready     chan struct{}
	started   bool
	done      bool
	presented bool
	findings  []string
	err       error // the latest check failed and none succeeded before
}

// MonitorOption configures a Monitor.
type MonitorOption func(*Monitor)

// WithCheckInterval sets how often Run checks again (DefaultCheckInterval).
func WithCheckInterval(d time.Duration) MonitorOption {
	return func(m *Monitor) {
		if d > 0 {
			m.interval = d
		}
	}
}

// WithMaxClusters sets how many clusters the Monitor checks and keeps
// (MaxCheckedClusters; the tests take a smaller bound).
func WithMaxClusters(n int) MonitorOption {
	return func(m *Monitor) {
		if n > 0 {
			m.maxClusters = n
		}
	}
}

// NewMonitor returns a Monitor of src's credential against declared.
func NewMonitor(src *Source, declared Declared, log *slog.Logger, opts ...MonitorOption) *Monitor {
	m := &Monitor{src: src, declared: declared, log: log, interval: DefaultCheckInterval, maxClusters: MaxCheckedClusters, clusters: map[string]*partCheck{}}
	for _, o := range opts {
		o(m)
	}
	m.graph = &partCheck{ready: make(chan struct{})}
	if src.scope != nil {
		m.clusters[lower(src.scope.id)] = &partCheck{id: src.scope.id, ready: make(chan struct{})}
	}
	return m
}

// Resolve implements directory.Source: ResolveCluster with the configured
// cluster.
func (m *Monitor) Resolve(ctx context.Context, principals []*secureauditv1.Principal) (*directory.Result, error) {
	return m.ResolveCluster(ctx, "", principals)
}

// ResolveCluster implements directory.ClusterSource: the Source's answer,
// after the credential has been checked at the cluster. A cluster not
// checked yet is checked beside the resolution, and the answer waits for
// it, so that once it is returned the check presents that cluster too.
func (m *Monitor) ResolveCluster(ctx context.Context, cluster string, principals []*secureauditv1.Principal) (*directory.Result, error) {
	scope, p, first, err := m.part(cluster)
	if err != nil {
		return nil, err
	}
	if scope == nil {
		return m.src.ResolveCluster(ctx, cluster, principals)
	}
	if first {
		// The check outlives a cancelled request: its result is the
		// agent's, not the request's.
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
			defer cancel()
			m.log.InfoContext(ctx, "credential self-check of a cluster first resolved", "cluster", scope.id)
			m.checkCluster(cctx, p, scope)
			m.present(cctx)
		}()
	}
	res, err := m.src.ResolveCluster(ctx, cluster, principals)
	if err != nil {
		return nil, err
	}
	// The cluster's first check (this request's, or a concurrent one's)
	// is presented before the answer is returned.
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return res, nil
}

// part returns the cluster a request names (nil when it names none and
// none is configured) and its check, which it adds when the cluster is new
// unless the Monitor already keeps maxClusters (refused, before the
// Source builds anything for it); first says the check has not started
// and the caller starts it. The bound is taken under mu with the addition,
// so concurrent requests never exceed it.
func (m *Monitor) part(cluster string) (scope *clusterScope, p *partCheck, first bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, known := m.clusters[lower(cluster)]
	if cluster != "" && !known && len(m.clusters) >= m.maxClusters {
		// A malformed ID is refused as one (InvalidArgument), full or not.
		if _, err := parseCluster(cluster, m.src.cfg.Subscriptions); err != nil {
			return nil, nil, false, err
		}
		return nil, nil, false, &directory.ClusterError{ID: cluster, Full: true,
			Reason: fmt.Sprintf("this entra-agent already checks its credential at %d AKS clusters, the most it keeps (MaxCheckedClusters); it answers for those and refuses a new one until it restarts", len(m.clusters))}
	}
	if scope, err = m.src.scopeOf(cluster); err != nil || scope == nil {
		return scope, nil, false, err
	}
	p, kept := m.clusters[lower(scope.id)]
	if !kept {
		p = &partCheck{id: scope.id, ready: make(chan struct{})}
		m.clusters[lower(scope.id)] = p
	}
	first = !p.started
	p.started = true
	return scope, p, first, nil
}

// Check checks the Graph permissions and the role assignments at every
// cluster known (the configured one and those requests named) now, and
// returns the result Presented then presents.
func (m *Monitor) Check(ctx context.Context) platformrun.CredentialCheck {
	m.checkGraph(ctx, m.graph)
	m.mu.Lock()
	parts := make([]*partCheck, 0, len(m.clusters))
	for _, p := range m.clusters {
		p.started = true
		parts = append(parts, p)
	}
	m.mu.Unlock()
	for _, p := range parts {
		scope, err := m.src.scopeOf(p.id)
		if err != nil { // checked when the cluster was first named
			m.settle(p, nil, err)
			continue
		}
		m.checkCluster(ctx, p, scope)
	}
	return m.present(ctx)
}

// Run checks again every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	return m.run(ctx, t.C)
}

// run checks again at every tick until ctx ends.
func (m *Monitor) run(ctx context.Context, ticks <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			m.Check(ctx)
		}
	}
}

// Presented returns the latest result as the agent presents it (JSON of
// platformrun.CredentialCheck), "" before the first.
func (m *Monitor) Presented() string {
	if p := m.latest.Load(); p != nil {
		return *p
	}
	return ""
}

// checkGraph checks the Graph application permissions of the token.
func (m *Monitor) checkGraph(ctx context.Context, p *partCheck) {
	tok, err := m.src.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{m.src.graphScope}})
	if err != nil {
		m.settle(p, nil, fmt.Errorf("get a Graph token: %w", err))
		return
	}
	roles, err := tokenRoles(tok.Token)
	if err != nil {
		m.settle(p, nil, fmt.Errorf("read the Graph token: %w", err))
		return
	}
	var findings []string
	for _, r := range roles {
		if !slices.ContainsFunc(m.declared.Graph, func(g string) bool { return strings.EqualFold(g, r) }) {
			findings = append(findings, "Graph application permission "+r+" is not declared")
		}
	}
	m.settle(p, findings, nil)
}

// checkCluster checks the role assignments at one cluster.
func (m *Monitor) checkCluster(ctx context.Context, p *partCheck, scope *clusterScope) {
	findings, err := m.src.armViolations(ctx, scope, m.declared.ARM)
	if err != nil {
		err = fmt.Errorf("read its Azure role assignments at AKS cluster %s: %w", scope.id, err)
	}
	m.settle(p, findings, err)
}

// settle records a part's result. A failed check of a part that has a
// result keeps that result (the failure is logged): the credential has
// not changed for lack of an answer.
func (m *Monitor) settle(p *partCheck, findings []string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil && p.done && p.err == nil:
		m.log.Warn("credential self-check failed; the previous result stands", "cluster", p.id, "error", err.Error())
	case err != nil:
		p.findings, p.err = nil, err
	default:
		p.findings, p.err = findings, nil
	}
	p.done = true
}

// present composes the presented result from the parts' latest results,
// stores it and logs it when it changed. It holds mu throughout, so that a
// result composed from older parts never replaces a newer one.
func (m *Monitor) present(ctx context.Context) platformrun.CredentialCheck {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		findings        []string
		violating, good []string
		failed          []string
	)
	graphErr := m.graph.err
	if m.graph.done && graphErr == nil {
		findings = append(findings, m.graph.findings...)
	}
	ids := make([]string, 0, len(m.clusters))
	for k := range m.clusters {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	for _, k := range ids {
		p := m.clusters[k]
		switch {
		case !p.done:
		case p.err != nil:
			failed = append(failed, p.err.Error())
		case len(p.findings) > 0:
			violating = append(violating, p.id)
			findings = append(findings, p.findings...)
		default:
			good = append(good, p.id)
		}
	}
	slices.Sort(findings)
	findings = slices.Compact(findings)
	shown := findings[:min(len(findings), maxFindings)]
	var c platformrun.CredentialCheck
	switch {
	case len(findings) > 0:
		where := ""
		if len(violating) > 0 {
			where = " at AKS cluster(s) " + named(violating)
		}
		c = platformrun.CredentialCheck{Outcome: "violation", Findings: shown,
			Summary: "VIOLATION: the entra-agent's credential is broader than its scope manifest declares" + where + ": " + strings.Join(shown, "; ")}
		if graphErr != nil {
			failed = append([]string{graphErr.Error()}, failed...)
		}
		if len(failed) > 0 {
			c.Summary += "; the self-check could not " + named(failed)
		}
	case graphErr != nil:
		c = platformrun.CredentialCheck{Outcome: "error", Summary: "the credential self-check could not " + graphErr.Error()}
	case len(failed) > 0:
		c = platformrun.CredentialCheck{Outcome: "error", Summary: "the credential self-check could not " + named(failed)}
		if len(good) > 0 {
			c.Summary += " (no broader than declared at AKS cluster(s) " + named(good) + ")"
		}
	default:
		checked := "its Graph application permissions"
		if len(good) > 0 {
			checked += " and its Azure role assignments at, above and below AKS cluster(s) " + named(good)
		} else {
			checked += " (no cluster configured or requested yet: Azure role assignments not checked)"
		}
		c = platformrun.CredentialCheck{Outcome: "pass", Summary: "the entra-agent's credential is no broader than its scope manifest: checked " + checked}
	}
	proof := c.JSON()
	if prev := m.latest.Swap(&proof); prev == nil || *prev != proof {
		m.log.InfoContext(ctx, "credential self-check", "result", proof)
	}
	// Those waiting for a part's first result may go on: it is presented.
	for _, p := range append([]*partCheck{m.graph}, slices.Collect(maps.Values(m.clusters))...) {
		if p.done && !p.presented {
			p.presented = true
			close(p.ready)
		}
	}
	return c
}

// named lists at most maxNamed items, then how many more there are.
func named(items []string) string {
	if len(items) <= maxNamed {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:maxNamed], ", "), len(items)-maxNamed)
}

// armViolations lists the actions of the agent's own role assignments at,
// above and below the cluster that the declared operations do not cover.
// Role definitions are read afresh, so that a changed role is noticed.
func (s *Source) armViolations(ctx context.Context, scope *clusterScope, declared []string) ([]string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
	if err != nil {
		return nil, fmt.Errorf("get ARM token: %w", err)
	}
	c, err := tokenClaims(tok.Token)
	if err != nil {
		return nil, err
	}
	if !isGUID(c.OID) {
		return nil, fmt.Errorf("the ARM token has no oid claim")
	}
	r := newRun(s)
	r.defs = &sync.Map{}
	filter := "assignedTo('" + lower(c.OID) + "')"
	pager := scope.assignments.NewListForScopePager(strings.TrimPrefix(scope.id, "/"), &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Value {
			if a.Properties == nil || a.Properties.RoleDefinitionID == nil {
				continue
			}
			def, err := r.roleDefinition(ctx, *a.Properties.RoleDefinitionID)
			if err != nil {
				return nil, err
			}
			for _, p := range def.perms {
				for _, op := range p.GetActions() {
					if !covered(op, declared) {
						out = append(out, fmt.Sprintf("Azure role %q at %s allows %s", def.name, deref(a.Properties.Scope), op))
					}
				}
				for _, op := range p.GetDataActions() {
					out = append(out, fmt.Sprintf("Azure role %q at %s allows the data action %s", def.name, deref(a.Properties.Scope), op))
				}
			}
		}
	}
	return out, nil
}

// covered reports whether a role's action is a declared operation (or
// falls within one) or only reads.
func covered(op string, declared []string) bool {
	if strings.HasSuffix(strings.ToLower(op), "/read") {
		return true
	}
	return slices.ContainsFunc(declared, func(d string) bool { return directory.Match(d, op) })
}
