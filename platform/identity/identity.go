// Package identity names SecureAudit's workloads as SPIFFE IDs and carries the
// authenticated caller of an RPC through its context.
package identity

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// TrustDomain is the SPIFFE trust domain of a SecureAudit deployment.
const TrustDomain = "secureaudit.local"

// Namespace is the Kubernetes namespace the services run in; it is part of
// every workload's SPIFFE ID path.
const Namespace = "secureaudit"

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

// Domain returns the trust domain.
func Domain() spiffeid.TrustDomain {
	return spiffeid.RequireTrustDomainFromString(TrustDomain)
}

// ID returns the SPIFFE ID of a workload, such as
// spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent.
func ID(workload string) spiffeid.ID {
	return spiffeid.RequireFromSegments(Domain(), "ns", Namespace, "sa", workload)
}

// Parse parses a SPIFFE ID and checks that it belongs to the trust domain.
func Parse(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("parse SPIFFE ID %q: %w", s, err)
	}
	if id.TrustDomain() != Domain() {
		return spiffeid.ID{}, fmt.Errorf("SPIFFE ID %q is not in trust domain %s", s, TrustDomain)
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
