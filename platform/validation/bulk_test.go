package validation

import (
	"context"
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
