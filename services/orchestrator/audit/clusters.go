package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/services/orchestrator/store"
)

// Clusters looks up registered clusters (package store).
type Clusters interface {
	GetCluster(ctx context.Context, name string) (*secureauditv1.Cluster, error)
}

// DialFunc connects to the server at addr whose certificate must carry id
// (mTLS, the platform client).
type DialFunc func(addr string, id spiffeid.ID) (*grpc.ClientConn, error)

// AgentScopes checks an agent dialled for one audit (approval.Registry):
// it must present its workload's approved scope manifest, as the
// configured agents must.
type AgentScopes interface {
	CheckAgent(ctx context.Context, workload, where string, conn grpc.ClientConnInterface) error
}

// AgentScopesWith makes every audit of a registered cluster check the scope
// manifest its rbac-agent presents before collecting from it.
func (r *Runner) AgentScopesWith(s AgentScopes) { r.scopes = s }

// ClustersWith makes audits of a registered cluster collect from that
// cluster's rbac-agent: dialled per audit at the registered address,
// expecting the registered SPIFFE ID. Audits of a name not registered, or
// of no name, use the default rbac-agent (Agents.RBAC) when there is one.
func (r *Runner) ClustersWith(c Clusters, dial DialFunc) {
	r.clusters, r.dial = c, dial
}

// errNoAgent says an audit has no rbac-agent to collect from.
var errNoAgent = errors.New("no rbac-agent")

// registration returns the registered cluster an audit of name collects
// from, or nil when it uses the default rbac-agent; errNoAgent when there
// is neither.
func (r *Runner) registration(ctx context.Context, name string) (*secureauditv1.Cluster, error) {
	if r.clusters != nil && name != "" {
		c, err := r.clusters.GetCluster(ctx, name)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	if r.agents.RBAC != nil {
		return nil, nil
	}
	if name == "" {
		return nil, fmt.Errorf("%w: this orchestrator has no default rbac-agent (-rbac-agent): name a registered cluster (secureaudit cluster list)", errNoAgent)
	}
	return nil, fmt.Errorf("%w: cluster %s is not registered and this orchestrator has no default rbac-agent (-rbac-agent): register it with secureaudit cluster add", errNoAgent, name)
}

// rbacAgent returns the rbac-agent an audit of cluster collects from, a
// description of it for events and errors, and a func that releases it.
func (r *Runner) rbacAgent(ctx context.Context, cluster string) (secureauditv1.RBACServiceClient, *secureauditv1.Cluster, func(), error) {
	c, err := r.registration(ctx, cluster)
	if err != nil {
		return nil, nil, nil, err
	}
	if c == nil {
		return r.agents.RBAC, nil, func() {}, nil
	}
	id, err := identity.Parse(c.GetAgentSpiffeId())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cluster %s: registered agent SPIFFE ID %q: %w", c.GetName(), c.GetAgentSpiffeId(), err)
	}
	conn, err := r.dial(c.GetAgentAddress(), id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cluster %s: rbac-agent at %s: %w", c.GetName(), c.GetAgentAddress(), err)
	}
	if r.scopes != nil {
		where := fmt.Sprintf("cluster %s's rbac-agent at %s", c.GetName(), c.GetAgentAddress())
		if err := r.scopes.CheckAgent(ctx, identity.RBACAgent, where, conn); err != nil {
			conn.Close()
			return nil, nil, nil, err
		}
	}
	return secureauditv1.NewRBACServiceClient(conn), c, func() { conn.Close() }, nil
}

// checkServed fails an audit whose rbac-agent presented another cluster
// than the one the audit is of: a mis-registered address must never file a
// report under the wrong cluster's name.
func checkServed(want, served string, reg *secureauditv1.Cluster) error {
	switch {
	case want == "" || want == served:
		return nil
	case reg != nil:
		return fmt.Errorf("the rbac-agent at %s (%s) registered for cluster %q serves cluster %q: no report is filed; correct the registration (secureaudit cluster get %s) or the agent's -cluster",
			reg.GetAgentAddress(), reg.GetAgentSpiffeId(), want, served, want)
	default:
		return fmt.Errorf("the rbac-agent serves cluster %q, not the requested %q", served, want)
	}
}
