package command

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestPrintTokens(t *testing.T) {
	key := &secureauditv1.TokenBaselineKey{Agent: "risk-agent", Provider: "openai", ResponseModel: "gpt-test-1", TemplateVersion: "t1"}
	var b bytes.Buffer
	printTokens(&b, &secureauditv1.GetTokenControlsResponse{
		Baselines: []*secureauditv1.TokenBaseline{{Key: key, Samples: 12, Warm: true, Median: 150, Mad: 9.5, Ewma: 151, TruncationRate: 0.02}},
		Alerts: []*secureauditv1.TokenAlert{{Kind: secureauditv1.TokenAlertKind_TOKEN_ALERT_KIND_SPIKE, Key: key,
			AuditId: "00000000-0000-4000-8000-000000000001", Time: timestamppb.New(timestamppb.Now().AsTime()), Message: "1500.0 tokens per item"}},
		Calls: []*secureauditv1.ModelCall{{Provider: "openai", RequestModel: "gpt-test", ResponseModel: "gpt-test-1", TemplateVersion: "t1",
			Items: 40, InputTokens: 4000, OutputTokens: 900, Latency: durationpb.New(0), FinishReason: "stop", Discarded: true}},
	})
	out := b.String()
	for _, want := range []string{"risk-agent/openai/gpt-test-1/t1", "alerting", "150.0", "SPIKE", "1500.0 tokens per item", "discarded", "4000"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
