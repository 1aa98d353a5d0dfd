package assess_test

import (
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/assess"
	"secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/snapshot"
	"secureaudit.dev/services/risk-agent/synth"
)

// BenchmarkDetect is the risk-agent's deterministic assessment of the
// 100,000-object synthetic cluster once its snapshot is built, as Assess
// runs it after the last chunk: every rule, identity, escalation paths,
// injection hits (scanned on another core meanwhile), sorting and the
// access review. Its wall time is what the audit waits for.
func BenchmarkDetect(b *testing.B) {
	s := snapshot.Build([]*secureauditv1.SnapshotChunk{synth.Cluster(1, 100_000)}, nil)
	var findings int
	for b.Loop() {
		findings = len(assess.Detect(s, nil, identity.Config{}).Findings)
	}
	b.ReportMetric(float64(findings), "findings")
}
