package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
)

func TestClusters(t *testing.T) { storagetest.Run(t, testClusters) }

func testClusters(t *testing.T, db *storage.DB) {
	ctx := context.Background()
	s := New(db)
	prod := &secureauditv1.Cluster{
		Name:          "aks-prod",
		AgentAddress:  "rbac-agent.aks-prod.example.com:8441",
		AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
		EntraTenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
		Labels:        map[string]string{"environment": "prod", "owner": "platform", "criticality": "high"},
		Schedule:      "@daily",
		RegisteredAt:  timestamppb.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
	}
	dev := &secureauditv1.Cluster{Name: "aks-dev", AgentAddress: "10.0.0.7:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
		RegisteredAt: timestamppb.New(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))}
	for _, c := range []*secureauditv1.Cluster{prod, dev} {
		if err := s.CreateCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateCluster(ctx, &secureauditv1.Cluster{Name: "aks-prod", AgentAddress: "elsewhere:1"}); !errors.Is(err, ErrExists) {
		t.Errorf("second registration of aks-prod: err = %v, want ErrExists", err)
	}
	got, err := s.GetCluster(ctx, "aks-prod")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prod, got, protocmp.Transform()); diff != "" {
		t.Errorf("aks-prod (-want +got):\n%s (a second registration must not replace it)", diff)
	}
	all, err := s.ListClusters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*secureauditv1.Cluster{dev, prod}, all, protocmp.Transform()); diff != "" {
		t.Errorf("list, by name (-want +got):\n%s", diff)
	}

	// Audits are per cluster: the last audit, and a listing by cluster
	// (one started without a name is filed under the one its agent
	// presented once the runner records it).
	if a, err := s.LastAudit(ctx, "aks-prod"); err != nil || a != nil {
		t.Errorf("last audit before any: %v, %v", a, err)
	}
	var prodAudits []*secureauditv1.Audit
	for i := 1; i <= 5; i++ {
		a := audit(i, secureauditv1.AuditState_AUDIT_STATE_PENDING)
		if i%2 == 1 {
			a.Cluster = "aks-prod"
		}
		if err := s.CreateAudit(ctx, a); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			// Started without a name; its agent presents aks-prod. Not
			// filed under it while running (an unnamed audit stays
			// serialised with other unnamed ones), filed once finished.
			a.Cluster = "aks-prod"
			a.State = secureauditv1.AuditState_AUDIT_STATE_RUNNING
			if err := s.UpdateAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
			if last, err := s.LastAudit(ctx, "aks-prod"); err != nil || last.GetId() == a.GetId() {
				t.Errorf("a running unnamed audit is filed under its cluster: %v, %v", last.GetId(), err)
			}
			a.State = secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
			if err := s.UpdateAudit(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if a.Cluster == "aks-prod" {
			prodAudits = append([]*secureauditv1.Audit{a}, prodAudits...)
		}
	}
	last, err := s.LastAudit(ctx, "aks-prod")
	if err != nil {
		t.Fatal(err)
	}
	if last.GetId() != prodAudits[0].GetId() {
		t.Errorf("last audit of aks-prod = %s, want %s", last.GetId(), prodAudits[0].GetId())
	}
	var listed []*secureauditv1.Audit
	token := ""
	for {
		page, next, err := s.ListClusterAudits(ctx, "aks-prod", 2, token)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, page...)
		if next == "" {
			break
		}
		token = next
	}
	if diff := cmp.Diff(prodAudits, listed, protocmp.Transform()); diff != "" {
		t.Errorf("audits of aks-prod, newest first (-want +got):\n%s", diff)
	}
	if page, _, err := s.ListClusterAudits(ctx, "aks-dev", 10, ""); err != nil || len(page) != 0 {
		t.Errorf("audits of aks-dev: %d, %v; want none", len(page), err)
	}

	if err := s.DeleteCluster(ctx, "aks-prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCluster(ctx, "aks-prod"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after deregistering: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCluster(ctx, "aks-prod"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second deregistration: err = %v, want ErrNotFound", err)
	}
	if last, err := s.LastAudit(ctx, "aks-prod"); err != nil || last == nil {
		t.Errorf("a deregistered cluster's audits stay: last = %v, %v", last, err)
	}
}
