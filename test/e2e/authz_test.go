package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
)

// host says which workload serves each service of the contracts. A new
// service must be added here, or the matrix fails.
var host = map[protoreflect.FullName]string{
	"secureaudit.v1.RBACService":       identity.RBACAgent,
	"secureaudit.v1.EntraService":      identity.EntraAgent,
	"secureaudit.v1.RiskService":       identity.RiskAgent,
	"secureaudit.v1.ReportService":     identity.ReportAgent,
	"secureaudit.v1.AuditService":      identity.Orchestrator,
	"secureaudit.v1.EvidenceService":   identity.Orchestrator,
	"secureaudit.v1.ScopeService":      identity.Orchestrator,
	"secureaudit.v1.RegressionService": identity.Orchestrator,
	"secureaudit.v1.ControlsService":   identity.Orchestrator,
	"secureaudit.v1.AcceptanceService": identity.Orchestrator,
	"secureaudit.v1.ClusterService":    identity.Orchestrator,
	"secureaudit.v1.ReviewService":     identity.Orchestrator,
}

// allowedCaller is the intended policy, written independently of the
// manifests: only the orchestrator calls agents; on a local stack (secureaudit
// up) only the cli calls the orchestrator, holding every role of its public
// API through the development caller policy. Every method must have an
// entry. (The roles per RPC are checked in services/orchestrator's
// TestAuthorizationMatrix.)
var allowedCaller = map[string]string{
	"/secureaudit.v1.RBACService/Collect":                 identity.Orchestrator,
	"/secureaudit.v1.EntraService/Resolve":                identity.Orchestrator,
	"/secureaudit.v1.RiskService/Assess":                  identity.Orchestrator,
	"/secureaudit.v1.ReportService/Render":                identity.Orchestrator,
	"/secureaudit.v1.ReportService/RenderFleet":           identity.Orchestrator,
	"/secureaudit.v1.ReportService/RenderFleetStream":     identity.Orchestrator,
	"/secureaudit.v1.AuditService/StartAudit":             identity.CLI,
	"/secureaudit.v1.AuditService/GetAudit":               identity.CLI,
	"/secureaudit.v1.AuditService/ListAudits":             identity.CLI,
	"/secureaudit.v1.AuditService/CancelAudit":            identity.CLI,
	"/secureaudit.v1.AuditService/GetReport":              identity.CLI,
	"/secureaudit.v1.AuditService/WatchAudit":             identity.CLI,
	"/secureaudit.v1.AuditService/GetAuditHistory":        identity.CLI,
	"/secureaudit.v1.AuditService/CreateSchedule":         identity.CLI,
	"/secureaudit.v1.AuditService/ListSchedules":          identity.CLI,
	"/secureaudit.v1.AuditService/DeleteSchedule":         identity.CLI,
	"/secureaudit.v1.EvidenceService/ExportEvidence":      identity.CLI,
	"/secureaudit.v1.ScopeService/ApproveScope":           identity.CLI,
	"/secureaudit.v1.ScopeService/RequestScope":           identity.CLI,
	"/secureaudit.v1.ScopeService/ListScopes":             identity.CLI,
	"/secureaudit.v1.ScopeService/ReviewScopes":           identity.CLI,
	"/secureaudit.v1.RegressionService/RunRegression":     identity.CLI,
	"/secureaudit.v1.ControlsService/GetTokenControls":    identity.CLI,
	"/secureaudit.v1.ControlsService/ListAnomalies":       identity.CLI,
	"/secureaudit.v1.AcceptanceService/RequestAcceptance": identity.CLI,
	"/secureaudit.v1.AcceptanceService/ApproveAcceptance": identity.CLI,
	"/secureaudit.v1.AcceptanceService/ListAcceptances":   identity.CLI,
	"/secureaudit.v1.ClusterService/RegisterCluster":      identity.CLI,
	"/secureaudit.v1.ClusterService/ListClusters":         identity.CLI,
	"/secureaudit.v1.ClusterService/GetCluster":           identity.CLI,
	"/secureaudit.v1.ClusterService/DeregisterCluster":    identity.CLI,
	"/secureaudit.v1.ClusterService/GetFleetSummary":      identity.CLI,
	"/secureaudit.v1.ClusterService/StreamFleetSummary":   identity.CLI,
	"/secureaudit.v1.ReviewService/DecideReview":          identity.CLI,
	"/secureaudit.v1.ReviewService/ImportReview":          identity.CLI,
	"/secureaudit.v1.ReviewService/GetReviewStatus":       identity.CLI,
	"/secureaudit.v1.ClusterService/GetFleetReport":       identity.CLI,
}

// methods lists every RPC of the contracts.
func methods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("secureaudit.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			if _, ok := host[sd.FullName()]; !ok {
				t.Errorf("service %s has no host workload in the matrix", sd.FullName())
			}
			for j := 0; j < sd.Methods().Len(); j++ {
				out = append(out, sd.Methods().Get(j))
			}
		}
		return true
	})
	// Touch a generated type so that the package's files are registered.
	_ = secureauditv1.File_secureaudit_v1_audit_proto
	return out
}

func fullName(m protoreflect.MethodDescriptor) string {
	return "/" + string(m.Parent().FullName()) + "/" + string(m.Name())
}

// TestManifestsCoverEveryMethod checks each service's scope manifest lists
// exactly the methods of its contract, with the intended callers.
func TestManifestsCoverEveryMethod(t *testing.T) {
	byHost := map[string]map[string][]string{}
	roles := map[string]string{}
	for _, w := range identity.Workloads {
		if w == identity.CLI {
			continue
		}
		data, err := scopes.Manifest(w)
		if err != nil {
			t.Fatal(err)
		}
		m, err := scope.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		byHost[w] = map[string][]string{}
		for _, meth := range m.Spec.Methods {
			byHost[w][meth.Name] = meth.Callers
			roles[meth.Name] = meth.Role
		}
	}
	seen := map[string]bool{}
	for _, m := range methods(t) {
		name := fullName(m)
		seen[name] = true
		want, ok := allowedCaller[name]
		if !ok {
			t.Errorf("%s has no entry in the intended policy", name)
			continue
		}
		callers, ok := byHost[host[m.Parent().FullName()]][name]
		if !ok {
			t.Errorf("%s is not in the %s scope manifest", name, host[m.Parent().FullName()])
			continue
		}
		if host[m.Parent().FullName()] == identity.Orchestrator {
			// The public API: a role per method, callers from the policy.
			if len(callers) != 0 || roles[name] == "" {
				t.Errorf("%s: callers %v and role %q, want a role and no callers", name, callers, roles[name])
			}
			continue
		}
		if len(callers) != 1 || callers[0] != identity.ID(want).String() {
			t.Errorf("%s callers = %v, want only %s", name, callers, identity.ID(want))
		}
	}
	for w, ms := range byHost {
		for name := range ms {
			if !seen[name] {
				t.Errorf("%s manifest lists %s, which is not in the contracts", w, name)
			}
		}
	}
}

// caller is one way of calling: a workload's certificate, none, or a
// certificate of another CA.
type caller struct {
	name string
	tls  func(server string) *tls.Config
}

func callers(t *testing.T) []caller {
	t.Helper()
	real := func(dir, workload string) func(string) *tls.Config {
		creds, err := rpc.LoadCredentials(pki.Paths(dir, workload))
		if err != nil {
			t.Fatal(err)
		}
		return func(server string) *tls.Config {
			return tlsconfig.MTLSClientConfig(creds, creds, tlsconfig.AuthorizeID(identity.ID(server)))
		}
	}
	var out []caller
	for _, w := range identity.Workloads {
		out = append(out, caller{name: w, tls: real(env.stack.PKIDir, w)})
	}
	trust, err := rpc.LoadCredentials(pki.Paths(env.stack.PKIDir, identity.CLI))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, caller{name: "no-certificate", tls: func(server string) *tls.Config {
		return tlsconfig.TLSClientConfig(trust, tlsconfig.AuthorizeID(identity.ID(server)))
	}})
	other := filepath.Join(t.TempDir(), "other-ca")
	if _, err := pki.WriteAll(other, []string{identity.Orchestrator, identity.CLI}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{identity.Orchestrator, identity.CLI} {
		foreign, err := rpc.LoadCredentials(pki.Paths(other, w))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, caller{name: "other-ca-" + w, tls: func(server string) *tls.Config {
			// Presents a certificate with a valid-looking SPIFFE ID from a
			// CA the servers do not trust; trusts the real servers.
			return tlsconfig.MTLSClientConfig(foreign, trust, tlsconfig.AuthorizeID(identity.ID(server)))
		}})
	}
	return out
}

// rawCall calls a method with an empty request on a connection without the
// platform's client interceptors and returns the status code.
func rawCall(ctx context.Context, conn *grpc.ClientConn, m protoreflect.MethodDescriptor) error {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, fullName(m))
	if err != nil {
		return err
	}
	if err := stream.SendMsg(dynamicpb.NewMessage(m.Input())); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if err := stream.RecvMsg(dynamicpb.NewMessage(m.Output())); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestAuthorizationMatrix calls every RPC of every service as every workload
// identity, without a certificate, and with certificates of another CA: only
// the intended pairs get past authentication and authorization.
func TestAuthorizationMatrix(t *testing.T) {
	all := methods(t)
	if len(all) != len(allowedCaller) {
		t.Errorf("contracts have %d methods, the intended policy %d", len(all), len(allowedCaller))
	}
	for _, c := range callers(t) {
		for _, m := range all {
			server := host[m.Parent().FullName()]
			t.Run(c.name+fullName(m), func(t *testing.T) {
				conn, err := grpc.NewClient(addr(t, server), grpc.WithTransportCredentials(credentials.NewTLS(c.tls(server))))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				code := status.Code(rawCall(ctx, conn, m))
				switch {
				case strings.HasPrefix(c.name, "other-ca-") || c.name == "no-certificate":
					if code != codes.Unauthenticated {
						t.Errorf("code = %s, want Unauthenticated", code)
					}
				case allowedCaller[fullName(m)] == c.name:
					if code == codes.PermissionDenied || code == codes.Unauthenticated || code == codes.Unavailable || code == codes.Unimplemented {
						t.Errorf("code = %s, want the call to pass authorization and be implemented", code)
					}
				default:
					if code != codes.PermissionDenied {
						t.Errorf("code = %s, want PermissionDenied", code)
					}
				}
			})
		}
	}
}

// TestValidationClientSide: the platform client refuses an invalid request
// before sending it. Nothing listens at the address, so a request that had
// been sent would fail with Unavailable instead.
func TestValidationClientSide(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	creds, err := rpc.LoadCredentials(pki.Paths(env.stack.PKIDir, identity.CLI))
	if err != nil {
		t.Fatal(err)
	}
	v, tr := validatorAndTracer(t)
	conn, err := rpc.Dial(dead, identity.ID(identity.Orchestrator), rpc.ClientConfig{Credentials: creds, Tracer: tr, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := secureauditv1.NewAuditServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = api.GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: "not-a-uuid"})
	checkInvalid(t, err, "audit_id")
	if !strings.Contains(err.Error(), "not sent") {
		t.Errorf("error %q does not say the request was not sent", err)
	}

	stream, err := api.WatchAudit(ctx, &secureauditv1.WatchAuditRequest{AuditId: "x"})
	if err == nil {
		_, err = stream.Recv()
	}
	checkInvalid(t, err, "audit_id")
}

// TestValidationServerSide: a raw client without validation sends invalid
// requests; the servers refuse them with InvalidArgument and field paths.
func TestValidationServerSide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw := func(server, as string) *grpc.ClientConn {
		creds, err := rpc.LoadCredentials(pki.Paths(env.stack.PKIDir, as))
		if err != nil {
			t.Fatal(err)
		}
		cfg := tlsconfig.MTLSClientConfig(creds, creds, tlsconfig.AuthorizeID(identity.ID(server)))
		conn, err := grpc.NewClient(addr(t, server), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	orch := secureauditv1.NewAuditServiceClient(raw(identity.Orchestrator, identity.CLI))
	_, err := orch.GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: "not-a-uuid"})
	checkInvalid(t, err, "audit_id")
	_, err = orch.ListAudits(ctx, &secureauditv1.ListAuditsRequest{PageSize: 1000})
	checkInvalid(t, err, "page_size")
	json := secureauditv1.ReportFormat_REPORT_FORMAT_JSON
	_, err = orch.StartAudit(ctx, &secureauditv1.StartAuditRequest{Formats: []secureauditv1.ReportFormat{json, json}})
	checkInvalid(t, err, "formats")
	_, err = orch.StartAudit(ctx, &secureauditv1.StartAuditRequest{Formats: []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_UNSPECIFIED}})
	checkInvalid(t, err, "formats") // the message says formats[0]

	rbac := secureauditv1.NewRBACServiceClient(raw(identity.RBACAgent, identity.Orchestrator))
	cs, err := rbac.Collect(ctx, &secureauditv1.CollectRequest{AuditId: "nope"})
	if err == nil {
		_, err = cs.Recv()
	}
	checkInvalid(t, err, "audit_id")

	risk := secureauditv1.NewRiskServiceClient(raw(identity.RiskAgent, identity.Orchestrator))
	as, err := risk.Assess(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Header{Header: &secureauditv1.AssessHeader{AuditId: "nope"}}}
	if err := as.Send(bad); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	_ = as.CloseSend()
	_, err = as.Recv()
	checkInvalid(t, err, "header.audit_id")
}

// checkInvalid asserts an InvalidArgument status whose violations name field.
func checkInvalid(t *testing.T, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("code = %s (%v), want InvalidArgument", st.Code(), err)
	}
	var paths []string
	for _, d := range st.Details() {
		if v, ok := d.(*validate.Violations); ok {
			for _, viol := range v.GetViolations() {
				paths = append(paths, fieldPath(viol))
			}
		}
	}
	for _, p := range paths {
		if p == field {
			return
		}
	}
	t.Errorf("violations name %v, want %s (message %q)", paths, field, st.Message())
}

func fieldPath(v *validate.Violation) string {
	var parts []string
	for _, e := range v.GetField().GetElements() {
		parts = append(parts, e.GetFieldName())
	}
	return strings.Join(parts, ".")
}
