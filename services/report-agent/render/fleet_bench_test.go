package render

import (
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// benchFleet is a fleet of n clusters, each with three labels, a trend of
// ten audits (one failed) and five worst findings.
func benchFleet(n int) *secureauditv1.FleetReport {
	f := &secureauditv1.FleetReport{GeneratedAt: timestamppb.Now(), Totals: &secureauditv1.SeverityCounts{}, TrendAudits: 10}
	for c := range n {
		fc := &secureauditv1.FleetCluster{Name: fmt.Sprintf("aks-%04d", c), Labels: map[string]string{"environment": "prod", "owner": "platform-team", "criticality": "high"}}
		for i := range 10 {
			a := &secureauditv1.FleetAudit{Id: fmt.Sprintf("00000000-0000-4000-8000-%08d%04d", c, i), State: "AUDIT_STATE_SUCCEEDED",
				CreatedAt: timestamppb.New(time.Date(2026, 12, 1+i, 2, 0, 0, 0, time.UTC)), Summary: &secureauditv1.SeverityCounts{Critical: uint32(20 - i), High: 35, Medium: 18, Low: 3}}
			if i == 4 {
				a.State, a.Summary, a.Error = "AUDIT_STATE_FAILED", nil, "rbac-agent: collect: unavailable"
			}
			fc.Trend = append(fc.Trend, a)
		}
		fc.LastAudit, fc.LastSucceeded, fc.HasPrevious = fc.Trend[9], fc.Trend[9], true
		for i := range 5 {
			fc.WorstFindings = append(fc.WorstFindings, &secureauditv1.Finding{Id: fmt.Sprintf("%016x", i), RuleId: "RBAC-001", Title: "cluster-admin or equivalent bound",
				Severity: secureauditv1.Severity_SEVERITY_CRITICAL, SeverityReason: "cluster scope", Remediation: "kubectl delete clusterrolebinding x"})
		}
		f.Clusters = append(f.Clusters, fc)
	}
	return f
}

// BenchmarkFleetReport renders the fleet report of 100 clusters in each
// format and reports the size of the RenderFleet request per cluster (the
// whole fleet travels in one message, under gRPC's 4 MB default).
func BenchmarkFleetReport(b *testing.B) {
	f := benchFleet(100)
	perCluster := float64(proto.Size(&secureauditv1.RenderFleetRequest{Fleet: f, Formats: []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_HTML}})) / 100
	for _, format := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_HTML} {
		b.Run(format.String(), func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				w := &countWriter{}
				if err := WriteFleet(w, format, f); err != nil {
					b.Fatal(err)
				}
				size = w.n
			}
			b.ReportMetric(float64(size), "doc-bytes")
			b.ReportMetric(perCluster, "request-bytes/cluster")
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
