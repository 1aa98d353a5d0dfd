package validation

import (
	"context"
	"log/slog"
	"testing"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func newValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUnaryClientRefusesBeforeSending(t *testing.T) {
	v := newValidator(t)
	sent := false
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		sent = true
		return nil
	}
	err := v.UnaryClient()(context.Background(), "/m", &secureauditv1.GetAuditRequest{AuditId: "nope"}, &secureauditv1.GetAuditResponse{}, nil, invoker)
	if sent {
		t.Error("an invalid request reached the invoker")
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %s", st.Code())
	}
	var fields []string
	for _, d := range st.Details() {
		if vs, ok := d.(*validate.Violations); ok {
			for _, viol := range vs.GetViolations() {
				for _, e := range viol.GetField().GetElements() {
					fields = append(fields, e.GetFieldName())
				}
			}
		}
	}
	if len(fields) != 1 || fields[0] != "audit_id" {
		t.Errorf("violations name %v, want [audit_id]", fields)
	}
}

func TestUnaryServerChecksBothWays(t *testing.T) {
	v := newValidator(t)
	info := &grpc.UnaryServerInfo{FullMethod: "/m"}
	called := false
	handler := func(context.Context, any) (any, error) {
		called = true
		// An audit without a state or creation time breaks the contract.
		return &secureauditv1.GetAuditResponse{Audit: &secureauditv1.Audit{Id: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"}}, nil
	}
	_, err := v.UnaryServer()(context.Background(), &secureauditv1.GetAuditRequest{AuditId: "x"}, info, handler)
	if status.Code(err) != codes.InvalidArgument || called {
		t.Fatalf("invalid request: code %s, handler called %v", status.Code(err), called)
	}
	_, err = v.UnaryServer()(context.Background(), &secureauditv1.GetAuditRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"}, info, handler)
	st := status.Convert(err)
	if st.Code() != codes.Internal || st.Message() != "internal" {
		t.Fatalf("invalid response: got %s %q, want bare Internal", st.Code(), st.Message())
	}
}
