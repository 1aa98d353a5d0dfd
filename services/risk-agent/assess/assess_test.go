package assess_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpctest"
	"secureaudit.dev/services/risk-agent/assess"
	entra "secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/reasoning"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/review"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

const auditID = "0b5a3c1e-8d2f-4b7a-9c3e-1f2a3b4c5d6e"

func client(t *testing.T, opts ...assess.Option) secureauditv1.RiskServiceClient {
	t.Helper()
	manifest, err := scopes.Manifest(identity.RiskAgent)
	if err != nil {
		t.Fatal(err)
	}
	p := rpctest.NewPKI(t)
	srv := assess.NewServer(rpctest.Logger(t), opts...)
	addr := p.Serve(t, identity.RiskAgent, manifest, func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, srv) })
	return secureauditv1.NewRiskServiceClient(p.Dial(t, addr, identity.RiskAgent, identity.Orchestrator))
}

// fixture returns the RBAC-001 fixture as two snapshot chunks (header first,
// trailer last) and its directory chunk.
func fixture(t *testing.T) ([]*secureauditv1.SnapshotChunk, *secureauditv1.DirectoryChunk) {
	t.Helper()
	return fixtureIn(t, filepath.Join("..", "rules", "testdata", "rules", "RBAC-001"))
}

// fixtureIn returns a rule fixture directory as fixture does.
func fixtureIn(t *testing.T, dir string) ([]*secureauditv1.SnapshotChunk, *secureauditv1.DirectoryChunk) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	all := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(data, all); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := &secureauditv1.DirectoryChunk{}
	if err := protojson.Unmarshal(data, d); err != nil {
		t.Fatal(err)
	}
	first := &secureauditv1.SnapshotChunk{Header: all.Header, ClusterRoles: all.ClusterRoles, Roles: all.Roles}
	last := &secureauditv1.SnapshotChunk{
		ClusterRoleBindings: all.ClusterRoleBindings,
		RoleBindings:        all.RoleBindings,
		Trailer: &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{
			ClusterRoles:        uint32(len(all.ClusterRoles)),
			Roles:               uint32(len(all.Roles)),
			ClusterRoleBindings: uint32(len(all.ClusterRoleBindings)),
			RoleBindings:        uint32(len(all.RoleBindings)),
		}},
	}
	return []*secureauditv1.SnapshotChunk{first, last}, d
}

func header() *secureauditv1.AssessRequest {
	return &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Header{Header: &secureauditv1.AssessHeader{AuditId: auditID, DirectoryAvailable: true}}}
}

func snap(c *secureauditv1.SnapshotChunk) *secureauditv1.AssessRequest {
	return &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Snapshot{Snapshot: c}}
}

// exchange sends reqs, closes the send side and collects the responses
// until the stream ends.
func exchange(t *testing.T, c secureauditv1.RiskServiceClient, reqs ...*secureauditv1.AssessRequest) ([]*secureauditv1.AssessResponse, error) {
	t.Helper()
	stream, err := c.Assess(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream; Recv has its status
			}
			t.Fatalf("send: %v", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var out []*secureauditv1.AssessResponse
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, resp)
	}
}

func TestAssess(t *testing.T) {
	c := client(t)
	chunks, d := fixture(t)
	resps, err := exchange(t, c, header(), snap(chunks[0]), snap(chunks[1]),
		&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Directory{Directory: d}})
	if err != nil {
		t.Fatalf("assess: %v", err)
	}
	if len(resps) < 2 {
		t.Fatalf("got %d responses, want findings and a summary", len(resps))
	}
	var got []*secureauditv1.Finding
	for _, r := range resps[:len(resps)-1] {
		if r.GetReasoning() != nil {
			continue // annotations, checked in reasoning_test.go
		}
		if r.GetFindings() == nil {
			t.Fatalf("expected a finding batch, got %v", r)
		}
		got = append(got, r.GetFindings().GetFindings()...)
	}
	dirs := []*secureauditv1.DirectoryChunk{d}
	built := snapshot.Build(chunks, dirs)
	want := rules.Evaluate(built)
	want = append(want, entra.Evaluate(built, dirs, want, entra.Config{})...)
	rules.Sort(want)
	rules.Annotate(built, want)
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("findings over gRPC differ from the engine's (-want +got):\n%s", diff)
	}
	wantSummary := &secureauditv1.AssessSummary{
		FindingCount:      uint32(len(want)),
		CatalogueVersion:  rules.CatalogueVersion,
		ReasoningProvider: "none",
		Counts:            chunks[1].GetTrailer().GetCounts(),
		TemplateVersion:   reasoning.TemplateVersion,
		// The snapshot names no server version: the stated default applies.
		Semantics: &secureauditv1.AuthorizerSemantics{
			ServerVersion: rules.DefaultServerVersion, StreamingNeedsCreate: true,
			Source: secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DEFAULT,
		},
		PlatformGrants: rules.Analyze(built).ManagedGrants(),
		// The fixture's directory holds no AKS cluster: no AKS control.
		Controls: registry.ControlsWithout(registry.AKS),
	}
	// The access review over the same snapshot and directory, leaving out
	// the same platform-managed grants.
	wantSummary.AccessReview, _ = review.Subjects(built, dirs, wantSummary.PlatformGrants)
	if len(wantSummary.AccessReview) == 0 || !wantSummary.AccessReview[0].GetResolved() {
		t.Errorf("the fixture's access review is empty or its first subject unresolved: %v", wantSummary.AccessReview)
	}
	if diff := cmp.Diff(wantSummary, resps[len(resps)-1].GetSummary(), protocmp.Transform()); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	var alice *secureauditv1.Finding
	for _, f := range got {
		if f.GetRuleId() == rules.ClusterAdmin && f.GetSubject().GetName() == "alice@example.com" {
			alice = f
		}
	}
	if alice.GetSubject().GetDisplayName() != "Alice Admin" || alice.GetSeverity() != secureauditv1.Severity_SEVERITY_CRITICAL {
		t.Errorf("alice's RBAC-001 finding = %v", alice)
	}
}

func TestAssessBatches(t *testing.T) {
	c := client(t)
	// 1000 users bound to a ClusterRole that reads secrets: 1000 findings.
	var subjects []*secureauditv1.Subject
	for i := range 1000 {
		subjects = append(subjects, &secureauditv1.Subject{Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER, Name: "user-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)})
	}
	chunk := &secureauditv1.SnapshotChunk{
		ClusterRoles:        []*secureauditv1.ClusterRole{{Meta: &secureauditv1.ObjectMeta{Name: "reader"}, Rules: []*secureauditv1.PolicyRule{{Verbs: []string{"get"}, ApiGroups: []string{""}, Resources: []string{"secrets"}}}}},
		ClusterRoleBindings: []*secureauditv1.ClusterRoleBinding{{Meta: &secureauditv1.ObjectMeta{Name: "b"}, RoleRef: &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "reader"}, Subjects: subjects}},
		Trailer:             &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{ClusterRoles: 1, ClusterRoleBindings: 1}},
	}
	chunks, _ := fixture(t)
	chunk.Header = chunks[0].GetHeader()
	resps, err := exchange(t, c, header(), snap(chunk))
	if err != nil {
		t.Fatalf("assess: %v", err)
	}
	var sizes []int
	for _, r := range resps {
		if b := r.GetFindings(); b != nil {
			sizes = append(sizes, len(b.GetFindings()))
		}
	}
	if diff := cmp.Diff([]int{500, 500}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if got := resps[len(resps)-1].GetSummary().GetFindingCount(); got != 1000 {
		t.Errorf("finding_count = %d, want 1000", got)
	}
}

func TestAssessInvalid(t *testing.T) {
	c := client(t)
	chunks, _ := fixture(t)
	noTrailer := &secureauditv1.SnapshotChunk{ClusterRoleBindings: chunks[1].ClusterRoleBindings}
	badCounts := &secureauditv1.SnapshotChunk{
		ClusterRoleBindings: chunks[1].ClusterRoleBindings,
		Trailer:             &secureauditv1.SnapshotTrailer{Counts: &secureauditv1.ObjectCounts{ClusterRoleBindings: 99}},
	}
	tests := []struct {
		name string
		reqs []*secureauditv1.AssessRequest
		want string
	}{
		{"empty stream", nil, "header"},
		{"header missing", []*secureauditv1.AssessRequest{snap(chunks[0]), snap(chunks[1])}, "first message must be the header"},
		{"no snapshot", []*secureauditv1.AssessRequest{header()}, "snapshot incomplete"},
		{"no trailer", []*secureauditv1.AssessRequest{header(), snap(chunks[0]), snap(noTrailer)}, "snapshot incomplete"},
		{"counts differ", []*secureauditv1.AssessRequest{header(), snap(chunks[0]), snap(badCounts)}, "snapshot incomplete: trailer counts"},
		{"snapshot header missing", []*secureauditv1.AssessRequest{header(), snap(chunks[1])}, "must carry the header"},
		{"second header", []*secureauditv1.AssessRequest{header(), header()}, "second header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resps, err := exchange(t, c, tt.reqs...)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Fatalf("err = %v, want InvalidArgument containing %q", err, tt.want)
			}
			if len(resps) != 0 {
				t.Errorf("got %d responses before the error", len(resps))
			}
		})
	}
}

// The stale-account age is the server's setting: the ENTRA-010 fixture's
// accounts are stale after the default 90 days, not after ten years.
func TestAssessStaleDays(t *testing.T) {
	chunks, d := fixtureIn(t, filepath.Join("..", "identity", "testdata", "rules", "ENTRA-010"))
	stale := func(c secureauditv1.RiskServiceClient) int {
		t.Helper()
		resps, err := exchange(t, c, header(), snap(chunks[0]), snap(chunks[1]),
			&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Directory{Directory: d}})
		if err != nil {
			t.Fatalf("assess: %v", err)
		}
		n := 0
		for _, r := range resps {
			for _, f := range r.GetFindings().GetFindings() {
				if f.GetRuleId() == entra.Stale {
					n++
				}
			}
		}
		return n
	}
	if n := stale(client(t)); n == 0 {
		t.Fatal("no ENTRA-010 finding with the default age; the fixture proves nothing")
	}
	if n := stale(client(t, assess.WithIdentityConfig(entra.Config{StaleDays: 3650}))); n != 0 {
		t.Errorf("%d ENTRA-010 findings with -stale-days 3650, want none", n)
	}
}

// TestDenyAssignmentsInDetect: a deny assignment for Everyone on every
// managedClusters action and data action at the subscription leaves no
// grant through an Azure role assignment in the findings (AKS-008, paths
// from Azure) or the access review; the admin group, which Azure RBAC
// does not decide, stays.
func TestDenyAssignmentsInDetect(t *testing.T) {
	chunks, d := fixtureIn(t, filepath.Join("..", "aks", "testdata", "rules", "AKS-008"))
	s := snapshot.Build(chunks, nil)
	azure := func(det assess.Detection) (findings, review int) {
		for _, f := range det.Findings {
			if f.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
				findings++
			}
		}
		for _, sub := range det.AccessReview {
			for _, g := range sub.GetGrants() {
				if g.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT {
					review++
				}
			}
		}
		return findings, review
	}
	f, r := azure(assess.Detect(s, []*secureauditv1.DirectoryChunk{d}, entra.Config{}))
	if f == 0 || r == 0 {
		t.Fatalf("without a deny assignment: %d findings and %d review grants through Azure role assignments; the fixture proves nothing", f, r)
	}
	sub := "/" + strings.Join(strings.Split(strings.Trim(d.GetAksCluster().GetId(), "/"), "/")[:2], "/")
	denied := proto.CloneOf(d)
	denied.DenyAssignments = []*secureauditv1.AzureDenyAssignment{{
		Id: sub + "/providers/Microsoft.Authorization/denyAssignments/d", Scope: sub, PrincipalIds: []string{"00000000-0000-0000-0000-000000000000"},
		Permissions: []*secureauditv1.AzureRolePermission{{
			Actions:     []string{"Microsoft.ContainerService/managedClusters/*", "Microsoft.Authorization/roleAssignments/write"},
			NotActions:  []string{"Microsoft.ContainerService/managedClusters/read"},
			DataActions: []string{"Microsoft.ContainerService/managedClusters/*"},
		}},
	}}
	det := assess.Detect(s, []*secureauditv1.DirectoryChunk{denied}, entra.Config{})
	if f, r := azure(det); f != 0 || r != 0 {
		t.Errorf("with the deny assignment: %d findings and %d review grants through Azure role assignments, want none", f, r)
	}
	admin := false
	for _, f := range det.Findings {
		admin = admin || f.GetBinding().GetKind() == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP
	}
	if !admin && len(d.GetAksCluster().GetAdminGroupObjectIds()) > 0 {
		t.Error("the admin group's finding went with the deny assignment; Azure RBAC does not decide it")
	}
}
