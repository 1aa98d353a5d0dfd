// Package identity names SecureAudit's workloads as SPIFFE IDs and carries the
// authenticated caller of an RPC through its context.
//
// The trust domain, the namespace and the form of the IDs are an adopter's:
// they come from SECUREAUDIT_TRUST_DOMAIN, SECUREAUDIT_NAMESPACE and
// SECUREAUDIT_ID_PATH when set, and from the services' -trust-domain,
// -namespace and -id-path flags (Configure), so that any SPIRE or
// cert-manager trust domain works without a rebuild.
package identity

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// TrustDomain is the default SPIFFE trust domain of a SecureAudit deployment.
const TrustDomain = "secureaudit.local"

// Namespace is the default Kubernetes namespace the services run in; it is
// part of every workload's SPIFFE ID path.
const Namespace = "secureaudit"

// IDPath is the default path of a workload's SPIFFE ID, as csi-driver-spiffe
// and SPIRE's Kubernetes workload registrar write them: {namespace} and
// {workload} (the service's name, its ServiceAccount) are replaced.
const IDPath = "/ns/{namespace}/sa/{workload}"

// Environment variables read at start, before any flag.
const (
	EnvTrustDomain = "SECUREAUDIT_TRUST_DOMAIN"
	EnvNamespace   = "SECUREAUDIT_NAMESPACE"
	EnvIDPath      = "SECUREAUDIT_ID_PATH"
)

// Workload names.
const (
	RBACAgent    = "rbac-agent"
	EntraAgent   = "entra-agent"
	RiskAgent    = "risk-agent"
	ReportAgent  = "report-agent"
	Orchestrator = "orchestrator"
	// CLI is the operator's command-line client.
	CLI = "cli"
)

// Workloads lists every workload that holds a certificate, services first.
var Workloads = []string{RBACAgent, EntraAgent, RiskAgent, ReportAgent, Orchestrator, CLI}

type config struct {
	domain    spiffeid.TrustDomain
	namespace string
	path      string
}

var current atomic.Pointer[config]

func init() {
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	err := Configure(env(EnvTrustDomain, TrustDomain), env(EnvNamespace, Namespace), env(EnvIDPath, IDPath))
	if err != nil {
		// The defaults stand in, and Err reports the environment's
		// error: services refuse to start with it (run.Setup).
		if derr := Configure(TrustDomain, Namespace, IDPath); derr != nil {
			panic(derr)
		}
		initErr = fmt.Errorf("%s, %s or %s: %w", EnvTrustDomain, EnvNamespace, EnvIDPath, err)
	}
}

var initErr error

// Configure sets the trust domain, the namespace and the ID path template
// ({namespace} and {workload} replaced). Empty arguments keep the current
// values. Services call it from their flags before anything else.
func Configure(trustDomain, namespace, idPath string) error {
	cur := current.Load()
	next := config{}
	if cur != nil {
		next = *cur
	}
	if trustDomain != "" {
		td, err := spiffeid.TrustDomainFromString(trustDomain)
		if err != nil {
			return fmt.Errorf("trust domain %q: %w", trustDomain, err)
		}
		next.domain = td
	}
	if namespace != "" {
		next.namespace = namespace
	}
	if idPath != "" {
		if !strings.Contains(idPath, "{workload}") {
			return fmt.Errorf("SPIFFE ID path %q: must contain {workload}", idPath)
		}
		next.path = idPath
	}
	if next.domain.IsZero() || next.namespace == "" || next.path == "" {
		return fmt.Errorf("identity: trust domain, namespace and ID path must all be set")
	}
	for _, w := range Workloads {
		if _, err := spiffeid.FromPath(next.domain, expand(next, w)); err != nil {
			return fmt.Errorf("SPIFFE ID of %s with trust domain %s, namespace %q and path %q: %w", w, next.domain, next.namespace, next.path, err)
		}
	}
	current.Store(&next)
	initErr = nil
	return nil
}

// Err reports a trust domain, namespace or ID path from the environment that
// could not be used.
func Err() error { return initErr }

func expand(c config, workload string) string {
	return strings.NewReplacer("{namespace}", c.namespace, "{workload}", workload).Replace(c.path)
}

// Domain returns the trust domain.
func Domain() spiffeid.TrustDomain { return current.Load().domain }

// ID returns the SPIFFE ID of a workload, by default such as
// spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent.
func ID(workload string) spiffeid.ID {
	c := current.Load()
	id, err := spiffeid.FromPath(c.domain, expand(*c, workload))
	if err != nil {
		panic(fmt.Sprintf("identity: SPIFFE ID of %q: %v", workload, err))
	}
	return id
}

// Resolve maps a SPIFFE ID written with the defaults (as the bundled scope
// manifests write them: spiffe://secureaudit.local/ns/secureaudit/sa/NAME)
// to the configured trust domain, namespace and path; any other ID is
// returned as it is.
func Resolve(s string) string {
	prefix := "spiffe://" + TrustDomain + strings.ReplaceAll(strings.TrimSuffix(IDPath, "{workload}"), "{namespace}", Namespace)
	name, ok := strings.CutPrefix(s, prefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return s
	}
	c := current.Load()
	id, err := spiffeid.FromPath(c.domain, expand(*c, name))
	if err != nil {
		return s
	}
	return id.String()
}

// Parse parses a SPIFFE ID and checks that it belongs to the trust domain.
func Parse(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("parse SPIFFE ID %q: %w", s, err)
	}
	if id.TrustDomain() != Domain() {
		return spiffeid.ID{}, fmt.Errorf("SPIFFE ID %q is not in trust domain %s", s, Domain())
	}
	return id, nil
}

type callerKey struct{}

// WithCaller returns a context that carries the authenticated caller.
func WithCaller(ctx context.Context, id spiffeid.ID) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// Caller returns the authenticated caller of the RPC being served.
func Caller(ctx context.Context) (spiffeid.ID, bool) {
	id, ok := ctx.Value(callerKey{}).(spiffeid.ID)
	return id, ok
}
