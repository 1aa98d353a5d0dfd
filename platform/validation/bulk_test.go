package validation

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestBulkTypesExist: every name of bulkTypes is a message of the contracts
// (a misspelt name would silently keep its sender's check).
func TestBulkTypesExist(t *testing.T) {
	_ = secureauditv1.File_secureaudit_v1_rbac_proto
	for _, n := range bulkTypes {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// sendStream is a server stream that records what reaches the network.
type sendStream struct {
	grpc.ServerStream
	sent []any
}

func (s *sendStream) SendMsg(m any) error      { s.sent = append(s.sent, m); return nil }
func (s *sendStream) Context() context.Context { return context.Background() }

// TestServerStreamLeavesBulkItemsToReceiver: a server stream sends a chunk
// holding an invalid Role or a batch holding an invalid Finding (their
// receiver refuses them), but still refuses an invalid envelope: too many
// objects in a chunk, an invalid header, a batch over its bound, an invalid
// summary; a unary response with the invalid Finding is refused.
func TestServerStreamLeavesBulkItemsToReceiver(t *testing.T) {
	v := newValidator(t)
	badRole := &secureauditv1.Role{Meta: &secureauditv1.ObjectMeta{Name: "", Namespace: "default"}}
	if v.Validate(badRole) == nil {
		t.Fatal("the test's invalid Role passes its rules")
	}
	badFinding := finding(1)
	badFinding.Id = "not a finding id"
	roles := func(n int) []*secureauditv1.Role {
		rs := make([]*secureauditv1.Role, n)
		for i := range rs {
			rs[i] = proto.Clone(badRole).(*secureauditv1.Role)
		}
		return rs
	}
	findings := func(n int) []*secureauditv1.Finding {
		fs := make([]*secureauditv1.Finding, n)
		for i := range fs {
			fs[i] = proto.Clone(badFinding).(*secureauditv1.Finding)
		}
		return fs
	}
	for _, tc := range []struct {
		name     string
		msg      proto.Message
		accepted bool
	}{
		{"a chunk with an invalid role", &secureauditv1.CollectResponse{Chunk: &secureauditv1.SnapshotChunk{Roles: roles(1)}}, true},
		{"a chunk of 501 roles", &secureauditv1.CollectResponse{Chunk: &secureauditv1.SnapshotChunk{Roles: roles(501)}}, false},
		{"an invalid header", &secureauditv1.CollectResponse{Chunk: &secureauditv1.SnapshotChunk{Header: &secureauditv1.SnapshotHeader{}, Roles: roles(1)}}, false},
		{"a response without its chunk", &secureauditv1.CollectResponse{}, false},
		{"a batch with an invalid finding", &secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{Findings: &secureauditv1.FindingBatch{Findings: findings(1)}}}, true},
		{"a batch of 501 findings", &secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{Findings: &secureauditv1.FindingBatch{Findings: findings(501)}}}, false},
		{"an invalid summary", &secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Summary{Summary: &secureauditv1.AssessSummary{}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (v.Validate(tc.msg) == nil) != false {
				t.Fatal("the message passes a receiver's validation; the test shows nothing")
			}
			s := &sendStream{}
			ss := &serverStream{ServerStream: s, v: v, method: "/secureaudit.v1.Test/Stream"}
			err := ss.SendMsg(tc.msg)
			if tc.accepted && (err != nil || len(s.sent) != 1) {
				t.Fatalf("SendMsg = %v, %d sent; want it sent", err, len(s.sent))
			}
			if !tc.accepted && (status.Code(err) != codes.Internal || len(s.sent) != 0) {
				t.Fatalf("SendMsg = %v, %d sent; want Internal and nothing sent", err, len(s.sent))
			}
			// The receiver refuses it, on either side.
			cs := &clientStream{ClientStream: &recvClient{msg: tc.msg}, v: v, method: "/secureaudit.v1.Test/Stream"}
			if err := cs.RecvMsg(tc.msg.ProtoReflect().New().Interface()); status.Code(err) != codes.Internal {
				t.Errorf("the client received it: %v", err)
			}
		})
	}
	// A unary response holding an invalid finding is refused by its server.
	_, err := v.UnaryServer()(context.Background(), &secureauditv1.GetAuditRequest{AuditId: "00000000-0000-4000-8000-000000000000"},
		&grpc.UnaryServerInfo{FullMethod: "/secureaudit.v1.Test/Unary"},
		func(context.Context, any) (any, error) {
			return &secureauditv1.FindingBatch{Findings: findings(1)}, nil
		})
	if status.Code(err) != codes.Internal {
		t.Errorf("a unary response with an invalid finding: %v, want Internal", err)
	}
}

// recvClient is a client stream whose one message is msg.
type recvClient struct {
	grpc.ClientStream
	msg proto.Message
}

func (r *recvClient) RecvMsg(m any) error {
	proto.Merge(m.(proto.Message), r.msg)
	return nil
}

var _ protoreflect.FullName = bulkTypes[0]

// TestReceivedInParallel: a received message with many bulk items, checked
// on several cores, passes or fails as validating it whole does, with the
// same error; so do messages with few items, checked whole.
func TestReceivedInParallel(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	v := newValidator(t)
	role := func(i int) *secureauditv1.Role {
		return &secureauditv1.Role{Meta: &secureauditv1.ObjectMeta{Name: fmt.Sprintf("r%d", i), Namespace: "ns"}}
	}
	chunk := func(n int, edit func(*secureauditv1.SnapshotChunk)) *secureauditv1.CollectResponse {
		c := &secureauditv1.SnapshotChunk{}
		for i := range n {
			c.Roles = append(c.Roles, role(i))
		}
		if edit != nil {
			edit(c)
		}
		return &secureauditv1.CollectResponse{Chunk: c}
	}
	batch := func(n int, edit func([]*secureauditv1.Finding)) *secureauditv1.RenderRequest {
		fs := make([]*secureauditv1.Finding, n)
		for i := range fs {
			fs[i] = finding(i)
		}
		if edit != nil {
			edit(fs)
		}
		return render(fs...)
	}
	for _, tc := range []struct {
		name  string
		msg   proto.Message
		valid bool
	}{
		{"500 valid roles", chunk(500, nil), true},
		{"an invalid role among 500", chunk(500, func(c *secureauditv1.SnapshotChunk) { c.Roles[317].Meta.Namespace = "" }), false},
		{"two invalid roles among 500", chunk(500, func(c *secureauditv1.SnapshotChunk) { c.Roles[3].Meta.Name = "a/b"; c.Roles[499].Meta.Namespace = "" }), false},
		{"501 valid roles", chunk(501, nil), false},
		{"an invalid header beside 500 roles", chunk(500, func(c *secureauditv1.SnapshotChunk) { c.Header = &secureauditv1.SnapshotHeader{} }), false},
		{"roles and service accounts", chunk(300, func(c *secureauditv1.SnapshotChunk) {
			for i := range 150 {
				c.ServiceAccounts = append(c.ServiceAccounts, &secureauditv1.ServiceAccount{Meta: &secureauditv1.ObjectMeta{Name: fmt.Sprintf("sa%d", i), Namespace: "ns"}})
			}
		}), true},
		{"an invalid role among few", chunk(10, func(c *secureauditv1.SnapshotChunk) { c.Roles[3].Meta.Namespace = "" }), false},
		{"500 valid findings", batch(500, nil), true},
		{"an invalid finding among 500", batch(500, func(fs []*secureauditv1.Finding) { fs[250].Id = "nope" }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := v.Validate(tc.msg)
			if (whole == nil) != tc.valid {
				t.Fatalf("validated whole: %v; the test expects valid=%v", whole, tc.valid)
			}
			got := v.validateReceived(tc.msg)
			if fmt.Sprint(got) != fmt.Sprint(whole) {
				t.Errorf("validateReceived = %v, want %v", got, whole)
			}
		})
	}
	// The items are found where they are: in a chunk, in a batch, in a
	// response holding a batch.
	for _, tc := range []struct {
		msg  proto.Message
		want int
	}{
		{chunk(500, nil), 500},
		{batch(70, nil), 70},
		{&secureauditv1.AssessResponse{Part: &secureauditv1.AssessResponse_Findings{Findings: &secureauditv1.FindingBatch{Findings: batch(3, nil).GetFindings().GetFindings()}}}, 3},
	} {
		if got := len(v.bulk.items(tc.msg.ProtoReflect(), nil)); got != tc.want {
			t.Errorf("%T: %d bulk items, want %d", tc.msg, got, tc.want)
		}
	}
}

// BenchmarkReceive validates a received batch of 500 findings whole (one
// core) and as validateReceived does (every core).
func BenchmarkReceive(b *testing.B) {
	v, err := New(slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	fs := make([]*secureauditv1.Finding, 500)
	for i := range fs {
		fs[i] = finding(i)
	}
	msg := render(fs...)
	b.Run("whole", func(b *testing.B) {
		for range b.N {
			if err := v.Validate(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("received", func(b *testing.B) {
		for range b.N {
			if err := v.validateReceived(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
