package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
)

// dialAs connects to a workload of the stack, or to addr, as another workload.
func dialAs(t *testing.T, target, workload, as string) *grpc.ClientConn {
	t.Helper()
	creds, err := rpc.LoadCredentials(pki.Paths(env.stack.PKIDir, as))
	if err != nil {
		t.Fatal(err)
	}
	v, tr := validatorAndTracer(t)
	conn, err := rpc.Dial(target, identity.ID(workload), rpc.ClientConfig{Credentials: creds, Tracer: tr, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rbacAgentFor starts an extra rbac-agent serving a snapshot and returns its address.
func rbacAgentFor(t *testing.T, snapshot string) string {
	t.Helper()
	addr, _ := startBinary(t, "rbac-agent", "-snapshot", snapshot, "-cluster", "reference")
	return addr
}

// referenceInput collects a case's input from live agents, as the
// orchestrator would: the snapshot chunks, and the directory's answer for
// the users, groups and workload client IDs the bindings name.
func referenceInput(t *testing.T, rbacAddr string, withDirectory bool) []*secureauditv1.AssessRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := secureauditv1.NewRBACServiceClient(dialAs(t, rbacAddr, identity.RBACAgent, identity.Orchestrator)).
		Collect(ctx, &secureauditv1.CollectRequest{AuditId: "00000000-0000-4000-8000-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*secureauditv1.AssessRequest
	principals := map[string]*secureauditv1.Principal{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := resp.GetChunk()
		if c == nil {
			continue
		}
		if h := c.GetHeader(); h != nil {
			// Where and when it was collected changes with every checkout and run.
			rel, err := filepath.Rel(env.root, h.GetOrigin())
			if err != nil {
				t.Fatal(err)
			}
			h.Origin, h.CollectedAt = filepath.ToSlash(rel), timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		}
		out = append(out, &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Snapshot{Snapshot: c}})
		// The orchestrator's principal extraction (audit.snapshot.principals).
		var subjects []*secureauditv1.Subject
		for _, b := range c.GetRoleBindings() {
			subjects = append(subjects, b.GetSubjects()...)
		}
		for _, b := range c.GetClusterRoleBindings() {
			subjects = append(subjects, b.GetSubjects()...)
		}
		for _, s := range subjects {
			kind := map[secureauditv1.SubjectKind]secureauditv1.PrincipalKind{
				secureauditv1.SubjectKind_SUBJECT_KIND_USER:  secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER,
				secureauditv1.SubjectKind_SUBJECT_KIND_GROUP: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP,
			}[s.GetKind()]
			if kind != 0 && !strings.HasPrefix(s.GetName(), "system:") {
				principals[kind.String()+"/"+s.GetName()] = &secureauditv1.Principal{Kind: kind, Name: s.GetName()}
			}
		}
		for _, sa := range c.GetServiceAccounts() {
			if id := sa.GetMeta().GetAnnotations()["azure.workload.identity/client-id"]; id != "" {
				principals["CLIENT_ID/"+id] = &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: id}
			}
		}
	}
	if !withDirectory {
		return out
	}
	keys := make([]string, 0, len(principals))
	for k := range principals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var list []*secureauditv1.Principal
	for _, k := range keys {
		list = append(list, principals[k])
	}
	rs, err := secureauditv1.NewEntraServiceClient(dialAs(t, addr(t, identity.EntraAgent), identity.EntraAgent, identity.Orchestrator)).
		Resolve(ctx, &secureauditv1.ResolveRequest{AuditId: "00000000-0000-4000-8000-000000000001", Principals: list})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Directory{Directory: resp.GetChunk()}})
	}
	return out
}

// TestRegressionReference checks the embedded reference inputs are what the
// live agents produce today (with -update it rewrites them and the approved
// outputs), then runs the regression through the orchestrator: every case
// must pass, and the run must be in the evidence log.
func TestRegressionReference(t *testing.T) {
	refDir := filepath.Join(env.root, "services", "orchestrator", "regression", "reference")
	cases := []struct {
		name      string
		rbac      func() string
		directory bool
	}{
		{"example", func() string { return addr(t, identity.RBACAgent) }, true},
		{"example-no-directory", func() string { return addr(t, identity.RBACAgent) }, false},
		{"minimal", func() string { return rbacAgentFor(t, filepath.Join(env.root, "testdata", "reference", "minimal")) }, false},
	}
	for _, tc := range cases {
		t.Run("input/"+tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			for _, r := range referenceInput(t, tc.rbac(), tc.directory) {
				line, err := protojson.MarshalOptions{}.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, line); err != nil {
					t.Fatal(err)
				}
				buf.Write(compact.Bytes())
				buf.WriteByte('\n')
			}
			path := filepath.Join(refDir, tc.name, "input.jsonl")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(want, buf.Bytes()) {
				t.Errorf("%s differs from what the live agents produce; regenerate with -update and review the diff", path)
			}
		})
	}

	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if *update {
		// The orchestrator embeds the cases: approve what the live risk-agent
		// produces now, through the same code path, after a rebuild.
		writeApproved(t, ctx, refDir)
		t.Log("reference inputs and approved outputs rewritten: rebuild the orchestrator (make build) and run again without -update")
		return
	}
	resp, err := secureauditv1.NewRegressionServiceClient(c.Conn()).RunRegression(ctx, &secureauditv1.RunRegressionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := resp.GetRun()
	if len(run.GetCases()) != len(cases) {
		t.Errorf("ran %d cases, want %d", len(run.GetCases()), len(cases))
	}
	for _, rc := range run.GetCases() {
		if !rc.GetPassed() {
			t.Errorf("case %s failed: new %v, absent %v, changed %v, problems %v", rc.GetName(), rc.GetNew(), rc.GetAbsent(), rc.GetChanged(), rc.GetProblems())
		}
	}
	if !run.GetPassed() || run.GetEvidenceIndex() < 0 {
		t.Errorf("run passed %v, evidence index %d", run.GetPassed(), run.GetEvidenceIndex())
	}
}

// approved mirrors regression.Approved, the format of approved.json; the run
// through the orchestrator checks that both agree.
type approved struct {
	Findings          []string `json:"findings"`
	CatalogueVersion  string   `json:"catalogueVersion"`
	ReasoningProvider string   `json:"reasoningProvider"`
	Model             string   `json:"model,omitempty"`
	TemplateVersion   string   `json:"templateVersion,omitempty"`
	Tokens            uint64   `json:"tokens,omitempty"`
}

// findingLine mirrors regression.FindingLine: "ID RULE SEVERITY SUBJECT BINDING".
func findingLine(f *secureauditv1.Finding) string {
	key := strings.Fields(findingKey(f)) // rule, subject, binding
	return strings.Join([]string{f.GetId(), key[0], strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"), key[1], key[2]}, " ")
}

// writeApproved runs each case's input.jsonl through the live risk-agent and
// writes approved.json.
func writeApproved(t *testing.T, ctx context.Context, refDir string) {
	t.Helper()
	dirs, err := os.ReadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	risk := secureauditv1.NewRiskServiceClient(dialAs(t, addr(t, identity.RiskAgent), identity.RiskAgent, identity.Orchestrator))
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(refDir, d.Name(), "input.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var reqs []*secureauditv1.AssessRequest
		dir := false
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var r secureauditv1.AssessRequest
			if err := protojson.Unmarshal(line, &r); err != nil {
				t.Fatal(err)
			}
			dir = dir || r.GetDirectory() != nil
			reqs = append(reqs, &r)
		}
		stream, err := risk.Assess(ctx)
		if err != nil {
			t.Fatal(err)
		}
		header := &secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Header{Header: &secureauditv1.AssessHeader{AuditId: "00000000-0000-4000-8000-000000000002", DirectoryAvailable: dir}}}
		for _, r := range append([]*secureauditv1.AssessRequest{header}, reqs...) {
			if err := stream.Send(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		a := approved{Findings: []string{}}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range resp.GetFindings().GetFindings() {
				a.Findings = append(a.Findings, findingLine(f))
			}
			if s := resp.GetSummary(); s != nil {
				a.CatalogueVersion, a.ReasoningProvider = s.GetCatalogueVersion(), s.GetReasoningProvider()
				for _, c := range s.GetModelCalls() {
					a.Tokens += c.GetInputTokens() + c.GetOutputTokens()
				}
			}
			if r := resp.GetReasoning(); r != nil {
				a.Model, a.TemplateVersion = r.GetModel(), r.GetTemplateVersion()
			}
		}
		sort.Strings(a.Findings)
		out, err := json.MarshalIndent(a, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(refDir, d.Name(), "approved.json"), append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
