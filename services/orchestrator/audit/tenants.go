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

// EntraConnWith gives the runner the default entra-agent's connection, so
// that an audit naming an AKS cluster checks the agent again after it
// answered (recheck).
func (r *Runner) EntraConnWith(conn grpc.ClientConnInterface) { r.entraConn = conn }

// recheck checks the agent again after it answered about the registered
// AKS cluster: the agent checks its credential at a cluster the first time
// a request names it, before it answers, and presents the result from then
// on; the check before the audit saw the result from before. With
// -refuse-on-credential-violation a violation found at this cluster
// refuses this audit, not only the next one.
func (r *Runner) recheck(ctx context.Context, c *entraChoice) error {
	if r.scopes == nil || c.conn == nil || c.aks == "" {
		return nil
	}
	where := fmt.Sprintf("%s, after it read AKS cluster %s", c.where, c.aks)
	if err := r.scopes.CheckAgent(ctx, identity.EntraAgent, where, c.conn); err != nil {
		return fmt.Errorf("cluster %s: %w", c.cluster, err)
	}
	return nil
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
	// conn is the connection to the agent, for its check after it read a
	// cluster it may not have checked its credential at before (nil: the
	// default agent of a runner not told its connection).
	conn grpc.ClientConnInterface
}

// entraAgent returns the entra-agent an audit of the registered cluster reg
// (nil: no registration) resolves with, nil when it resolves with none.
func (r *Runner) entraAgent(ctx context.Context, reg *secureauditv1.Cluster) (*entraChoice, error) {
	tenant := strings.ToLower(reg.GetEntraTenantId())
	def := &entraChoice{client: r.agents.Entra, where: "the default entra-agent", cluster: reg.GetName(), tenant: tenant, aks: reg.GetAksResourceId(), conn: r.entraConn}
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
		return &entraChoice{client: secureauditv1.NewEntraServiceClient(a.Conn), where: where, cluster: reg.GetName(), tenant: tenant, aks: reg.GetAksResourceId(), conn: a.Conn}, nil
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
// registered one, or of no cluster named at all when one is registered:
// identities of another tenant, or Azure access to another cluster, must
// never be filed under the cluster's name. Every Resolve stream (one per
// batch of principals) is checked: the first chunk of each must present
// the registered tenant (when the cluster has one), and every tenant and
// cluster any chunk presents must be the same as the others.
func (c *entraChoice) check(dir *directory) error {
	if dir == nil {
		return nil
	}
	hint := fmt.Sprintf("correct the registration (secureaudit cluster get %s) or the orchestrator's -tenant-entra-agent", c.cluster)
	if c.fallback {
		hint = fmt.Sprintf("no -tenant-entra-agent is configured for tenant %s: add one, or correct the registration (secureaudit cluster get %s)", c.tenant, c.cluster)
	}
	n := len(dir.streams)
	// batch names the stream in errors when there are several.
	batch := func(i int) string {
		if n < 2 {
			return ""
		}
		return fmt.Sprintf(" (in its answer to batch %d of %d of principals)", i+1, n)
	}
	// The tenants: each stream's first chunk presents the registered one;
	// every tenant presented is the registered one, or, without a
	// registered tenant, the first presented.
	want := c.tenant
	for i, s := range dir.streams {
		if c.tenant != "" && s.tenant == "" {
			return fmt.Errorf("%s, resolving cluster %q registered with Entra tenant %q, presents no tenant%s: no report is filed; %s", c.where, c.cluster, c.tenant, batch(i), hint)
		}
		for _, t := range s.tenants {
			switch {
			case want == "":
				want = t
			case t != want && c.tenant != "":
				return fmt.Errorf("%s, resolving cluster %q registered with Entra tenant %q, serves tenant %q%s: no report is filed; %s", c.where, c.cluster, c.tenant, t, batch(i), hint)
			case t != want:
				return fmt.Errorf("%s, resolving cluster %q, presents Entra tenant %q and then tenant %q%s: an answer mixing tenants is refused, no report is filed; check the agent's configuration", c.where, c.cluster, want, t, batch(i))
			}
		}
	}
	// The AKS clusters: every one presented is the registered one, or,
	// without a registered one, the first presented; a registered cluster
	// refuses Azure access that names none.
	wantAKS := c.aks
	for i, s := range dir.streams {
		for _, a := range s.clusters {
			switch {
			case wantAKS == "":
				wantAKS = a
			case strings.EqualFold(a, wantAKS):
			case c.aks != "":
				return fmt.Errorf("%s, resolving cluster %q registered as AKS cluster %s, reads the Azure access of AKS cluster %s%s: no report is filed; correct the registration (secureaudit cluster get %s) or the agent's -cluster-resource-id",
					c.where, c.cluster, c.aks, a, batch(i), c.cluster)
			default:
				return fmt.Errorf("%s, resolving cluster %q, reads the Azure access of AKS cluster %s and then of AKS cluster %s%s: an answer mixing clusters is refused, no report is filed; check the agent's configuration", c.where, c.cluster, wantAKS, a, batch(i))
			}
		}
		if c.aks != "" && s.azure && len(s.clusters) == 0 {
			return fmt.Errorf("%s, resolving cluster %q registered as AKS cluster %s, returns Azure role or deny assignments without naming the AKS cluster they were read for%s (a directory snapshot without aksCluster holds the assignments of every cluster): no report is filed; give the snapshot its cluster (aksCluster: secureaudit entra export --cluster-resource-id) or the agent -cluster-resource-id, or remove the AKS resource ID from the registration (secureaudit cluster get %s)",
				c.where, c.cluster, c.aks, batch(i), c.cluster)
		}
	}
	return nil
}
