package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/schedule"
	"secureaudit.dev/services/orchestrator/storage/storagetest"
	"secureaudit.dev/services/orchestrator/store"
)

// BenchmarkFleetSummary measures GetFleetSummary's handler on a fleet of 100
// registered clusters with 100 stored audits each (10,000 audits), the
// newest of each succeeded with 200 stored findings and a report header
// comparing it with the one before, on each backend.
//
//	go test ./services/orchestrator/cluster -run '^$' -bench FleetSummary -benchtime 20x
func BenchmarkFleetSummary(b *testing.B) {
	const clusters, audits, findings = 100, 100, 200
	for _, backend := range storagetest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st := store.New(storagetest.Open(b, storagetest.DSN(b, backend)))
			sched := schedule.New(st, nil, rpctest.Logger(b))
			srv := cluster.NewServer(st, rpctest.Logger(b), cluster.WithSchedules(sched), cluster.WithFleet(st))
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			n := 0
			for c := range clusters {
				name := fmt.Sprintf("aks-%03d", c)
				if _, err := srv.RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: &secureauditv1.Cluster{
					Name: name, AgentAddress: name + ".internal:8441", AgentSpiffeId: "spiffe://secureaudit.local/ns/secureaudit/sa/rbac-agent",
					Labels: map[string]string{"environment": []string{"prod", "dev"}[c%2]}, Schedule: "@daily",
				}}); err != nil {
					b.Fatal(err)
				}
				for i := range audits {
					n++
					a := &secureauditv1.Audit{Id: fmt.Sprintf("00000000-0000-4000-8000-%012d", n), Cluster: name,
						State:     secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED,
						Summary:   &secureauditv1.SeverityCounts{High: 3, Medium: 7},
						CreatedAt: timestamppb.New(start.Add(time.Duration(n) * time.Minute))}
					if i%10 == 9 {
						a.State = secureauditv1.AuditState_AUDIT_STATE_FAILED
					}
					if err := st.CreateAudit(ctx, a); err != nil {
						b.Fatal(err)
					}
					if i != audits-2 { // the newest succeeded one
						continue
					}
					var fs []*secureauditv1.Finding
					for f := range findings {
						fs = append(fs, finding(n*1000+f, secureauditv1.Severity(1+f%5), f%7 == 0))
					}
					input := &secureauditv1.Report{Cluster: name, History: &secureauditv1.AuditHistory{
						PreviousAuditId: a.GetId(), PreviousGeneratedAt: a.GetCreatedAt(), NewFindingIds: []string{fs[1].GetId()}, Resolved: fs[2:4]}}
					if err := st.SaveResult(ctx, a.GetId(), fs, input, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			for range b.N {
				resp, err := srv.GetFleetSummary(ctx, &secureauditv1.GetFleetSummaryRequest{})
				if err != nil {
					b.Fatal(err)
				}
				if len(resp.GetClusters()) != clusters || resp.GetClusters()[0].GetFailedAudits() != 1 || len(resp.GetClusters()[0].GetWorstFindings()) != 5 {
					b.Fatalf("summary of %d clusters, first %v", len(resp.GetClusters()), resp.GetClusters()[0])
				}
			}
		})
	}
}
