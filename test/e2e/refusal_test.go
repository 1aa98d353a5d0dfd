package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
)

// TestAgentRefusalsBecomeAnomalies: a call an agent refuses (here the
// risk-agent's identity asking the rbac-agent for a snapshot) reaches the
// orchestrator's CC7.2 anomaly list with its caller and method as evidence.
func TestAgentRefusalsBecomeAnomalies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rbac := secureauditv1.NewRBACServiceClient(dialAs(t, addr(t, "rbac-agent"), identity.RBACAgent, identity.RiskAgent))
	stream, err := rbac.Collect(ctx, &secureauditv1.CollectRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Collect as the risk-agent: %v, want PermissionDenied", err)
	}

	// Every audit checks the agents first; that is when refusals are read.
	runExampleAudit(t, "json")

	controls := secureauditv1.NewControlsServiceClient(dialAs(t, env.stack.Orchestrator(), identity.Orchestrator, identity.CLI))
	resp, err := controls.ListAnomalies(ctx, &secureauditv1.ListAnomaliesRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAnomalies() {
		ev := a.GetEvidence()
		if a.GetKind() == secureauditv1.AnomalyKind_ANOMALY_KIND_DENIED_RPC && a.GetSource() == identity.RBACAgent &&
			ev["caller"] == identity.ID(identity.RiskAgent).String() && ev["method"] == "/secureaudit.v1.RBACService/Collect" {
			return
		}
	}
	t.Errorf("no DENIED_RPC anomaly from the rbac-agent naming the risk-agent's call among %d anomalies", len(resp.GetAnomalies()))
}
