package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

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
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/platform/scope"
)

// intendedRole is the role each RPC of the public API requires, written
// independently of the manifest. A new RPC without an entry fails the test.
var intendedRole = map[string]authz.Role{
	"/secureaudit.v1.AuditService/StartAudit":             authz.Operator,
	"/secureaudit.v1.AuditService/GetAudit":               authz.Viewer,
	"/secureaudit.v1.AuditService/ListAudits":             authz.Viewer,
	"/secureaudit.v1.AuditService/CancelAudit":            authz.Operator,
	"/secureaudit.v1.AuditService/GetReport":              authz.Viewer,
	"/secureaudit.v1.AuditService/WatchAudit":             authz.Viewer,
	"/secureaudit.v1.AuditService/GetAuditHistory":        authz.Viewer,
	"/secureaudit.v1.AuditService/CreateSchedule":         authz.Operator,
	"/secureaudit.v1.AuditService/ListSchedules":          authz.Viewer,
	"/secureaudit.v1.AuditService/DeleteSchedule":         authz.Operator,
	"/secureaudit.v1.EvidenceService/ExportEvidence":      authz.Auditor,
	"/secureaudit.v1.ScopeService/ApproveScope":           authz.Approver,
	"/secureaudit.v1.ScopeService/RequestScope":           authz.Operator,
	"/secureaudit.v1.ScopeService/ListScopes":             authz.Viewer,
	"/secureaudit.v1.ScopeService/ReviewScopes":           authz.Approver,
	"/secureaudit.v1.RegressionService/RunRegression":     authz.Operator,
	"/secureaudit.v1.AcceptanceService/RequestAcceptance": authz.Operator,
	"/secureaudit.v1.AcceptanceService/ApproveAcceptance": authz.Approver,
	"/secureaudit.v1.AcceptanceService/ListAcceptances":   authz.Viewer,
	"/secureaudit.v1.ReviewService/DecideReview":          authz.Approver,
	"/secureaudit.v1.ReviewService/ImportReview":          authz.Approver,
	"/secureaudit.v1.ReviewService/GetReviewStatus":       authz.Viewer,
	"/secureaudit.v1.ControlsService/GetTokenControls":    authz.Viewer,
	"/secureaudit.v1.ControlsService/ListAnomalies":       authz.Viewer,
	"/secureaudit.v1.ClusterService/RegisterCluster":      authz.Operator,
	"/secureaudit.v1.ClusterService/ListClusters":         authz.Viewer,
	"/secureaudit.v1.ClusterService/GetCluster":           authz.Viewer,
	"/secureaudit.v1.ClusterService/DeregisterCluster":    authz.Operator,
	"/secureaudit.v1.ClusterService/GetFleetSummary":      authz.Viewer,
	"/secureaudit.v1.ClusterService/StreamFleetSummary":   authz.Viewer,
	"/secureaudit.v1.ClusterService/GetFleetReport":       authz.Viewer,
}

// The orchestrator's services; the matrix fails if the manifest names
// another.
var public = []protoreflect.FullName{"secureaudit.v1.AuditService", "secureaudit.v1.EvidenceService", "secureaudit.v1.ScopeService", "secureaudit.v1.RegressionService", "secureaudit.v1.ControlsService", "secureaudit.v1.AcceptanceService", "secureaudit.v1.ClusterService", "secureaudit.v1.ReviewService"}

// matrixPolicy gives each test identity one role; backend-* callers get
// operator by a path pattern; nobody and the agents get nothing.
const matrixPolicy = `apiVersion: secureaudit.dev/v1
kind: CallerPolicy
callers:
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/as-viewer
    roles: [viewer]
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/as-operator
    roles: [operator]
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/as-approver
    roles: [approver]
  - id: spiffe://secureaudit.local/ns/secureaudit/sa/as-auditor
    roles: [auditor]
  - path: /ns/secureaudit/sa/backend-*
    roles: [operator]
`

// TestAuthorizationMatrix calls every RPC of the orchestrator's public API
// over real mTLS as an identity holding each role, one holding none, one
// whose role comes from a path pattern, the cli and an agent (neither in
// this policy): exactly the callers holding the RPC's role get through.
// Handlers are the generated Unimplemented ones, so a call that passes
// authorization answers Unimplemented (or InvalidArgument from the server's
// validation of the empty request), one refused PermissionDenied.
func TestAuthorizationMatrix(t *testing.T) {
	callers := map[string]authz.Role{"as-viewer": authz.Viewer, "as-operator": authz.Operator, "as-approver": authz.Approver, "as-auditor": authz.Auditor, "as-nobody": "", "backend-ci": authz.Operator, identity.CLI: "", identity.RBACAgent: ""}
	var extra []string
	for name := range callers {
		if name != identity.CLI && name != identity.RBACAgent {
			extra = append(extra, name)
		}
	}
	p := rpctest.NewPKI(t, extra...)
	var err error
	if p.Callers, err = authz.ParseCallers("matrix.yaml", []byte(matrixPolicy)); err != nil {
		t.Fatal(err)
	}
	data, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// The manifest gives every method exactly the intended role, and no
	// caller by name.
	listed := map[string]bool{}
	for _, meth := range m.Spec.Methods {
		listed[meth.Name] = true
		if want, ok := intendedRole[meth.Name]; !ok || authz.Role(meth.Role) != want || len(meth.Callers) > 0 {
			t.Errorf("manifest: %s has role %q and callers %v, want role %q and no callers", meth.Name, meth.Role, meth.Callers, want)
		}
	}
	addr := p.Serve(t, identity.Orchestrator, data, func(s *grpc.Server) {
		secureauditv1.RegisterAuditServiceServer(s, secureauditv1.UnimplementedAuditServiceServer{})
		secureauditv1.RegisterEvidenceServiceServer(s, secureauditv1.UnimplementedEvidenceServiceServer{})
		secureauditv1.RegisterScopeServiceServer(s, secureauditv1.UnimplementedScopeServiceServer{})
		secureauditv1.RegisterRegressionServiceServer(s, secureauditv1.UnimplementedRegressionServiceServer{})
		secureauditv1.RegisterControlsServiceServer(s, secureauditv1.UnimplementedControlsServiceServer{})
		secureauditv1.RegisterAcceptanceServiceServer(s, secureauditv1.UnimplementedAcceptanceServiceServer{})
		secureauditv1.RegisterClusterServiceServer(s, secureauditv1.UnimplementedClusterServiceServer{})
		secureauditv1.RegisterReviewServiceServer(s, secureauditv1.UnimplementedReviewServiceServer{})
	})
	var methods []protoreflect.MethodDescriptor
	for _, name := range public {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			t.Fatal(err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for i := 0; i < sd.Methods().Len(); i++ {
			methods = append(methods, sd.Methods().Get(i))
		}
	}
	if len(methods) != len(intendedRole) || len(listed) != len(intendedRole) {
		t.Errorf("contracts have %d methods, the manifest %d, the intended roles %d", len(methods), len(listed), len(intendedRole))
	}
	for caller, role := range callers {
		// A raw client (no client-side validation), so that the server's
		// guard answers an empty request first.
		creds := p.Credentials(t, caller)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsconfig.MTLSClientConfig(creds, creds, tlsconfig.AuthorizeID(identity.ID(identity.Orchestrator))))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for _, md := range methods {
			name := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
			t.Run(caller+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				code := status.Code(rawCall(ctx, conn, name, md))
				// Past the guard, the server's validation refuses the empty
				// request (InvalidArgument) or the handler is unimplemented.
				passed := code == codes.Unimplemented || code == codes.InvalidArgument
				allowed := role != "" && intendedRole[name] == role
				if allowed && !passed || !allowed && code != codes.PermissionDenied {
					t.Errorf("code = %s, want it %s (role %q, method needs %q)", code, map[bool]string{true: "past authorization", false: "PermissionDenied"}[allowed], role, intendedRole[name])
				}
			})
		}
	}
}

// rawCall sends an empty request without client-side validation, so that
// the server's guard answers first.
func rawCall(ctx context.Context, conn *grpc.ClientConn, name string, md protoreflect.MethodDescriptor) error {
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, name)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(dynamicpb.NewMessage(md.Input())); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if err := stream.RecvMsg(dynamicpb.NewMessage(md.Output())); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// TestShippedCallerPolicy: deploy/callers/callers.yaml parses, names only
// methods of the public API, and gives the cli no approver or auditor role
// (a deployment's cli is an operator's terminal; only `secureaudit up`
// and `scan` give it every role).
func TestShippedCallerPolicy(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "callers", "callers.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	callers, err := authz.LoadCallers(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authz.NewPolicy(m, callers); err != nil {
		t.Fatal(err)
	}
	for _, r := range callers.RolesOf(identity.ID(identity.CLI)) {
		if r == authz.Approver || r == authz.Auditor {
			t.Errorf("the shipped policy gives the cli the %s role", r)
		}
	}
}
