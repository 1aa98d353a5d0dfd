package rpc

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Call is one observed RPC, as the scope review compares it with manifests.
type Call struct {
	// Server is the workload that served the call.
	Server string
	// Method is the full method name.
	Method string
	// Caller is the caller's SPIFFE ID, empty when it was not authenticated.
	Caller string
	// Code is the call's outcome: PermissionDenied or Unauthenticated for
	// denials.
	Code codes.Code
}

// Observer is told of calls. It must not block.
type Observer interface {
	Observe(ctx context.Context, c Call)
}

// observeUnaryClient reports every unary call a client makes to server.
func observeUnaryClient(o Observer, server, caller string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		o.Observe(ctx, Call{Server: server, Method: method, Caller: caller, Code: status.Code(err)})
		return err
	}
}

// observeStreamClient reports every stream a client opens to server, once,
// with the code it ended with.
func observeStreamClient(o Observer, server, caller string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		c := Call{Server: server, Method: method, Caller: caller}
		if err != nil {
			c.Code = status.Code(err)
			o.Observe(ctx, c)
			return nil, err
		}
		return &observedStream{ClientStream: s, o: o, ctx: ctx, c: c}, nil
	}
}

type observedStream struct {
	grpc.ClientStream
	o    Observer
	ctx  context.Context
	c    Call
	done bool
}

func (s *observedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil && !s.done {
		s.done = true
		if !errors.Is(err, io.EOF) {
			s.c.Code = status.Code(err)
		}
		s.o.Observe(s.ctx, s.c)
	}
	return err
}
