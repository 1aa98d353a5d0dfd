package validation

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// sink is a client stream that records what reaches the network.
type sink struct {
	grpc.ClientStream
	sent int
}

func (s *sink) SendMsg(any) error { s.sent++; return nil }

func finding(i int) *secureauditv1.Finding {
	return &secureauditv1.Finding{
		Id: fmt.Sprintf("%016x", i), RuleId: "RBAC-001", Title: "t", Severity: secureauditv1.Severity_SEVERITY_HIGH,
		SeverityReason: "base", Scope: &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER}, Remediation: "r",
	}
}

func render(findings ...*secureauditv1.Finding) *secureauditv1.RenderRequest {
	return &secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Findings{Findings: &secureauditv1.FindingBatch{Findings: findings}}}
}

// TestForwardedSkipsOnlyTheirRules: a client stream opened with a
// Forwarded set does not evaluate the rules of the messages in the set
// again (one changed after it was added passes, which is what shows the
// skip: changing one is the caller's fault), but still refuses any other
// invalid message and the bounds of the messages holding them; without the
// set, and on the receiving side, the changed message is refused.
func TestForwardedSkipsOnlyTheirRules(t *testing.T) {
	v := newValidator(t)
	ok, fwd, other := finding(1), finding(2), finding(3)
	set := NewForwarded()
	set.Add(fwd)
	fwd.Id = "not a finding id" // invalid now: its rules are not evaluated again
	other.Id = "not a finding id"
	many := make([]*secureauditv1.Finding, 501) // FindingBatch holds at most 500
	for i := range many {
		many[i] = finding(10 + i)
		set.Add(many[i])
	}
	if set.Len() != 502 {
		t.Fatalf("set holds %d messages, want 502", set.Len())
	}
	open := func(ctx context.Context) (grpc.ClientStream, *sink) {
		t.Helper()
		s := &sink{}
		cs, err := v.StreamClient()(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, nil, "/secureaudit.v1.ReportService/Render",
			func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
				return s, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return cs, s
	}
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		msg      *secureauditv1.RenderRequest
		accepted bool
	}{
		{"forwarded, valid on arrival", WithForwarded(context.Background(), set), render(ok, fwd), true},
		{"another invalid finding beside it", WithForwarded(context.Background(), set), render(fwd, other), false},
		{"more forwarded findings than a batch holds", WithForwarded(context.Background(), set), render(many...), false},
		{"an empty batch", WithForwarded(context.Background(), set), render(), false},
		{"the same without the set", context.Background(), render(ok, fwd), false},
		{"a nil set", WithForwarded(context.Background(), nil), render(ok, fwd), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, s := open(tc.ctx)
			err := cs.SendMsg(tc.msg)
			if tc.accepted && (err != nil || s.sent != 1) {
				t.Fatalf("SendMsg = %v, %d sent; want it sent", err, s.sent)
			}
			if !tc.accepted && (status.Code(err) != codes.InvalidArgument || s.sent != 0) {
				t.Fatalf("SendMsg = %v, %d sent; want InvalidArgument and nothing sent", err, s.sent)
			}
		})
	}
	// The receiver validates what arrives, forwarded or not.
	ss := &serverStream{ServerStream: &recvStream{msg: render(ok, fwd)}, v: v, method: "/secureaudit.v1.ReportService/Render"}
	if err := ss.RecvMsg(&secureauditv1.RenderRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("the receiver accepted the changed forwarded finding: %v", err)
	}
}

// recvStream is a server stream whose one message is msg.
type recvStream struct {
	grpc.ServerStream
	msg *secureauditv1.RenderRequest
}

func (r *recvStream) RecvMsg(m any) error {
	proto.Merge(m.(proto.Message), r.msg)
	return nil
}
