// Package validation enforces the protovalidate rules of the contracts on both
// ends of every RPC: a client refuses to send an invalid request and to accept
// an invalid response, and a server refuses to accept an invalid request and
// to send an invalid response. Every message is validated in full on arrival
// at its receiver. Two exceptions, both on the sending side only: a message a
// process received (validated on arrival) and forwards unchanged is not
// validated a second time before it leaves (Forwarded), and the items of
// bulk data a server streams (the objects of a snapshot, the findings of an
// assessment: bulkTypes) are left to the receiver, while the messages that
// hold them (the response, the chunk or batch and its bounds, headers,
// trailers and summaries) are still checked before they leave. Requests,
// unary responses and every other streamed message are validated at both
// ends. A received message holding many bulk items is validated on every
// core (validateReceived): the same rules, the same verdict and error.
package validation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Validator checks messages against their protovalidate rules.
type Validator struct {
	v    protovalidate.Validator
	log  *slog.Logger
	bulk bulkFilter
}

// New builds the validator once, at start-up.
func New(log *slog.Logger) (*Validator, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("build protovalidate validator: %w", err)
	}
	return &Validator{v: v, log: log, bulk: newBulkFilter()}, nil
}

// Validate checks one message. The error is a *protovalidate.ValidationError
// when the message breaks a rule.
func (v *Validator) Validate(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", msg)
	}
	return v.v.Validate(m)
}

// Forwarded is a set of messages that a process received through these
// interceptors, each validated on arrival, and forwards unchanged: the
// orchestrator's snapshot chunks (from the rbac-agent to the risk-agent) and
// findings (from the risk-agent to the report-agent). A client stream
// opened with a context that carries the set (WithForwarded) does not
// evaluate their rules again before sending: the rules of everything else
// it sends are evaluated as always, those of the messages that hold them
// (the request, the batch and its bounds) included, and the receiver
// validates all of it on arrival. Add each message before a stream sends
// it, and change none once added. Not for concurrent use: the goroutine
// that adds is the one that sends.
type Forwarded struct {
	set map[proto.Message]struct{}
}

// NewForwarded returns an empty set.
func NewForwarded() *Forwarded { return &Forwarded{set: map[proto.Message]struct{}{}} }

// Add adds m, a message received through a validating interceptor.
func (f *Forwarded) Add(m proto.Message) { f.set[m] = struct{}{} }

// Clear empties the set, once every stream that sends its messages has
// sent them, so that the set no longer keeps them in memory.
func (f *Forwarded) Clear() {
	if f != nil {
		clear(f.set)
	}
}

// Len returns the number of messages in the set.
func (f *Forwarded) Len() int { return len(f.set) }

// ShouldValidate implements protovalidate.Filter: the rules of a message of
// the set, of its fields and of everything they hold are skipped.
func (f *Forwarded) ShouldValidate(m protoreflect.Message, _ protoreflect.Descriptor) bool {
	_, ok := f.set[m.Interface()]
	return !ok
}

type forwardedKey struct{}

// WithForwarded returns ctx carrying f, for the client streams opened with
// it.
func WithForwarded(ctx context.Context, f *Forwarded) context.Context {
	if f == nil {
		return ctx
	}
	return context.WithValue(ctx, forwardedKey{}, f)
}

func forwardedFrom(ctx context.Context) *Forwarded {
	f, _ := ctx.Value(forwardedKey{}).(*Forwarded)
	return f
}

// validateSent checks a message about to be sent, skipping the rules of
// the forwarded messages it holds (f may be nil).
func (v *Validator) validateSent(msg any, f *Forwarded) error {
	if f == nil {
		return v.Validate(msg)
	}
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", msg)
	}
	return v.v.Validate(m, protovalidate.WithFilter(f))
}

// bulkTypes names the message types whose rules a server does not evaluate
// before streaming them: the objects of a snapshot (the rbac-agent's
// Collect) and findings (the risk-agent's Assess). At 100,000 objects their
// sender's check cost about as much as their receiver's (1.6 s of CPU of a
// scan) and found nothing the receiver does not: every receiver validates
// them in full on arrival, so an invalid item still never enters a process
// that did not build it. The rbac-agent also checks each object as it
// builds the snapshot (leaving out what breaks a limit). The envelope of
// each item is validated before it leaves, its bounds included.
var bulkTypes = [...]protoreflect.FullName{
	"secureaudit.v1.Namespace",
	"secureaudit.v1.Role",
	"secureaudit.v1.ClusterRole",
	"secureaudit.v1.RoleBinding",
	"secureaudit.v1.ClusterRoleBinding",
	"secureaudit.v1.ServiceAccount",
	"secureaudit.v1.Workload",
	"secureaudit.v1.Finding",
}

// bulkFilter skips the rules of the bulkTypes, their fields and
// everything they hold.
type bulkFilter map[protoreflect.FullName]struct{}

func newBulkFilter() bulkFilter {
	f := bulkFilter{}
	for _, n := range bulkTypes {
		f[n] = struct{}{}
	}
	return f
}

// ShouldValidate implements protovalidate.Filter.
func (f bulkFilter) ShouldValidate(m protoreflect.Message, _ protoreflect.Descriptor) bool {
	_, skip := f[m.Descriptor().FullName()]
	return !skip
}

// validateStreamed checks a message a server is about to stream, leaving
// the bulk items it holds to the receiver.
func (v *Validator) validateStreamed(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a protobuf message", msg)
	}
	return v.v.Validate(m, protovalidate.WithFilter(v.bulk))
}

// parallelMin is the number of bulk items a received message must hold for
// them to be validated on every core.
const parallelMin = 64

// validateReceived checks a message that arrived, every rule of it. A
// message holding many bulk items (a snapshot chunk, a batch of findings)
// is checked on every core: the message without its items on this
// goroutine, the items split between the others; the two passes evaluate
// exactly the rules of validating it whole. A message that fails is
// validated whole again, so that the error (its field paths) is that of
// validating it whole.
func (v *Validator) validateReceived(msg any) error {
	m, ok := msg.(proto.Message)
	workers := runtime.GOMAXPROCS(0)
	if !ok || workers < 2 {
		return v.Validate(msg)
	}
	items := v.bulk.items(m.ProtoReflect(), nil)
	if len(items) < parallelMin {
		return v.Validate(msg)
	}
	workers = min(workers, len(items)/(parallelMin/2))
	var (
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	per := (len(items) + workers - 1) / workers
	for start := 0; start < len(items); start += per {
		part := items[start:min(start+per, len(items))]
		wg.Go(func() {
			for _, it := range part {
				if failed.Load() {
					return
				}
				if v.v.Validate(it) != nil {
					failed.Store(true)
					return
				}
			}
		})
	}
	if v.v.Validate(m, protovalidate.WithFilter(v.bulk)) != nil {
		failed.Store(true)
	}
	wg.Wait()
	if failed.Load() {
		if err := v.Validate(msg); err != nil {
			return err
		}
		return errors.New("the message failed a rule in parts but passes whole") // never: the passes evaluate the same rules
	}
	return nil
}

// items appends the bulk messages m holds (not those inside them) to out.
func (f bulkFilter) items(m protoreflect.Message, out []proto.Message) []proto.Message {
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		_, bulk := f[fd.Message().FullName()]
		switch {
		case fd.IsList():
			l := val.List()
			for i := range l.Len() {
				if bulk {
					out = append(out, l.Get(i).Message().Interface())
				} else {
					out = f.items(l.Get(i).Message(), out)
				}
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			_, bulkValues := f[fd.MapValue().Message().FullName()]
			val.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if bulkValues {
					out = append(out, mv.Message().Interface())
				} else {
					out = f.items(mv.Message(), out)
				}
				return true
			})
		case bulk:
			out = append(out, val.Message().Interface())
		default:
			out = f.items(val.Message(), out)
		}
		return true
	})
	return out
}

// Status turns a validation failure into an InvalidArgument status carrying
// the violations (field paths and rule IDs) as details.
func Status(prefix string, err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return status.Errorf(codes.InvalidArgument, "%s: %v", prefix, err)
	}
	st := status.New(codes.InvalidArgument, prefix+": "+verr.Error())
	if withDetails, derr := st.WithDetails(verr.ToProto()); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// UnaryServer validates the request and the response of a unary RPC.
func (v *Validator) UnaryServer() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := v.Validate(req); err != nil {
			return nil, Status("invalid request", err)
		}
		resp, err := handler(ctx, req)
		if err != nil {
			return resp, err
		}
		if err := v.Validate(resp); err != nil {
			v.log.ErrorContext(ctx, "server produced an invalid response", "method", info.FullMethod, "error", err.Error())
			return nil, status.Error(codes.Internal, "internal")
		}
		return resp, nil
	}
}

// StreamServer validates every message a streaming RPC receives and sends.
func (v *Validator) StreamServer() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &serverStream{ServerStream: ss, v: v, method: info.FullMethod})
	}
}

type serverStream struct {
	grpc.ServerStream
	v      *Validator
	method string
}

func (s *serverStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.v.validateReceived(m); err != nil {
		return Status("invalid request", err)
	}
	return nil
}

// SendMsg checks m before it leaves, except its bulk items, which the
// receiver validates on arrival.
func (s *serverStream) SendMsg(m any) error {
	if err := s.v.validateStreamed(m); err != nil {
		s.v.log.ErrorContext(s.Context(), "server produced an invalid response", "method", s.method, "error", err.Error())
		return status.Error(codes.Internal, "internal")
	}
	return s.ServerStream.SendMsg(m)
}

// UnaryClient refuses to send an invalid request and to accept an invalid response.
func (v *Validator) UnaryClient() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := v.Validate(req); err != nil {
			return Status("invalid request (not sent)", err)
		}
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		if err := v.Validate(reply); err != nil {
			return status.Errorf(codes.Internal, "invalid response from %s: %v", method, err)
		}
		return nil
	}
}

// StreamClient validates every message a client stream sends and receives.
// For a server-streaming RPC, whose one request is only known at its first
// SendMsg, the stream is opened then, after the request passed validation,
// so that an invalid request never reaches the network.
func (v *Validator) StreamClient() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if !desc.ClientStreams {
			open := func() (grpc.ClientStream, error) { return streamer(ctx, desc, cc, method, opts...) }
			return &lazyStream{ctx: ctx, open: open, v: v, method: method}, nil
		}
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &clientStream{ClientStream: cs, v: v, method: method, forwarded: forwardedFrom(ctx)}, nil
	}
}

// lazyStream opens the underlying stream at the first, validated SendMsg.
type lazyStream struct {
	ctx    context.Context
	open   func() (grpc.ClientStream, error)
	v      *Validator
	method string
	cs     grpc.ClientStream
}

var errNotStarted = status.Error(codes.Internal, "stream used before its request was sent")

func (s *lazyStream) SendMsg(m any) error {
	if s.cs != nil {
		return s.cs.SendMsg(m)
	}
	if err := s.v.Validate(m); err != nil {
		return Status("invalid request (not sent)", err)
	}
	cs, err := s.open()
	if err != nil {
		return err
	}
	s.cs = &clientStream{ClientStream: cs, v: s.v, method: s.method}
	return s.cs.SendMsg(m)
}

func (s *lazyStream) RecvMsg(m any) error {
	if s.cs == nil {
		return errNotStarted
	}
	return s.cs.RecvMsg(m)
}

func (s *lazyStream) Header() (metadata.MD, error) {
	if s.cs == nil {
		return nil, errNotStarted
	}
	return s.cs.Header()
}

func (s *lazyStream) Trailer() metadata.MD {
	if s.cs == nil {
		return nil
	}
	return s.cs.Trailer()
}

func (s *lazyStream) CloseSend() error {
	if s.cs == nil {
		return nil
	}
	return s.cs.CloseSend()
}

func (s *lazyStream) Context() context.Context {
	if s.cs == nil {
		return s.ctx
	}
	return s.cs.Context()
}

type clientStream struct {
	grpc.ClientStream
	v         *Validator
	method    string
	forwarded *Forwarded // may be nil
}

func (s *clientStream) SendMsg(m any) error {
	if err := s.v.validateSent(m, s.forwarded); err != nil {
		return Status("invalid request (not sent)", err)
	}
	return s.ClientStream.SendMsg(m)
}

func (s *clientStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.v.validateReceived(m); err != nil {
		return status.Errorf(codes.Internal, "invalid response from %s: %v", s.method, err)
	}
	return nil
}
