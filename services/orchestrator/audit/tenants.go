package audit

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
)

// TenantAgent is an entra-agent configured for one Entra tenant
// (-tenant-entra-agent): audits of the clusters registered with that tenant
// resolve their principals through it.
type TenantAgent struct {
	// Tenant is the Entra tenant ID it serves.
	Tenant string
	// Address and ID are where it is dialled and the SPIFFE ID its
	// certificate must carry, for events and errors.
	Address, ID string
	// Conn is the connection to it, checked (AgentScopes) at every audit
	// that uses it.
	Conn grpc.ClientConnInterface
}

// TenantsWith makes audits of a cluster registered with an Entra tenant
// resolve through the entra-agent configured for that tenant, or through the
// default one (Agents.Entra, dialled at defaultAddr) when none is, and
// refuse the answer of an agent that presents another tenant. An audit of a
// cluster whose tenant no configured entra-agent serves fails.
func (r *Runner) TenantsWith(defaultAddr string, agents ...TenantAgent) {
	r.entraAddr = defaultAddr
	r.tenants = make(map[string]TenantAgent, len(agents))
	for _, a := range agents {
		r.tenants[strings.ToLower(a.Tenant)] = a
	}
}

// entraChoice is the entra-agent an audit resolves with and what its answer
// must present.
type entraChoice struct {
	client secureauditv1.EntraServiceClient
	// where describes the agent for events and errors.
	where string
	// cluster, tenant and aks are the registration the answer is checked
	// against; tenant is empty when the cluster has none (no check).
	cluster, tenant, aks string
	// fallback is true when the cluster's tenant has no agent of its own
	// and the default one is asked.
	fallback bool
}

// entraAgent returns the entra-agent an audit of the registered cluster reg
// (nil: no registration) resolves with, nil when it resolves with none.
func (r *Runner) entraAgent(ctx context.Context, reg *secureauditv1.Cluster) (*entraChoice, error) {
	tenant := strings.ToLower(reg.GetEntraTenantId())
	def := &entraChoice{client: r.agents.Entra, where: "the default entra-agent", cluster: reg.GetName(), tenant: tenant, aks: reg.GetAksResourceId()}
	if r.entraAddr != "" {
		def.where = fmt.Sprintf("the default entra-agent at %s (-entra-agent)", r.entraAddr)
	}
	if tenant == "" {
		if r.agents.Entra == nil {
			return nil, nil
		}
		return def, nil
	}
	if a, ok := r.tenants[tenant]; ok {
		where := fmt.Sprintf("tenant %s's entra-agent at %s (%s)", tenant, a.Address, a.ID)
		if r.scopes != nil {
			if err := r.scopes.CheckAgent(ctx, identity.EntraAgent, where, a.Conn); err != nil {
				return nil, fmt.Errorf("cluster %s: %w", reg.GetName(), err)
			}
		}
		return &entraChoice{client: secureauditv1.NewEntraServiceClient(a.Conn), where: where, cluster: reg.GetName(), tenant: tenant, aks: reg.GetAksResourceId()}, nil
	}
	if r.agents.Entra == nil {
		return nil, fmt.Errorf("cluster %s is registered with Entra tenant %s and no entra-agent serves that tenant: no report is filed; start the orchestrator with -tenant-entra-agent %s=HOST:PORT, or correct the registration (secureaudit cluster get %s)",
			reg.GetName(), tenant, tenant, reg.GetName())
	}
	def.fallback = true
	return def, nil
}

// check refuses a directory answer that is not of the audited cluster's
// tenant, or whose Azure access is of another AKS cluster than the
// registered one: identities of another tenant must never be filed under
// the cluster's name.
func (c *entraChoice) check(dir *directory) error {
	if dir == nil {
		return nil
	}
	hint := fmt.Sprintf("correct the registration (secureaudit cluster get %s) or the orchestrator's -tenant-entra-agent", c.cluster)
	if c.fallback {
		hint = fmt.Sprintf("no -tenant-entra-agent is configured for tenant %s: add one, or correct the registration (secureaudit cluster get %s)", c.tenant, c.cluster)
	}
	served := strings.ToLower(dir.tenant)
	switch {
	case c.tenant == "":
	case served == "":
		return fmt.Errorf("%s, resolving cluster %q registered with Entra tenant %q, presents no tenant: no report is filed; %s", c.where, c.cluster, c.tenant, hint)
	case served != c.tenant:
		return fmt.Errorf("%s, resolving cluster %q registered with Entra tenant %q, serves tenant %q: no report is filed; %s", c.where, c.cluster, c.tenant, served, hint)
	}
	if c.aks != "" && dir.aks != "" && !strings.EqualFold(c.aks, dir.aks) {
		return fmt.Errorf("%s, resolving cluster %q registered as AKS cluster %s, reads the Azure access of AKS cluster %s: no report is filed; correct the registration (secureaudit cluster get %s) or the agent's -cluster-resource-id",
			c.where, c.cluster, c.aks, dir.aks, c.cluster)
	}
	return nil
}
