// Package regression is the baseline regression control (SOC 2 CC4.1,
// CC9.2): reference cases with approved outputs are re-run through the live
// risk-agent (deterministic detection and the configured reasoning) and
// report-agent. Deterministic findings must match the approved ones exactly;
// the model's output, when there is one, is checked structurally (no invented
// finding IDs, every finding covered, summary length within bounds, token use
// within the approved band); the answering model and template version are
// recorded. Each run is appended to the evidence log and a failure raises an
// alert.
//
// Reference cases are embedded from reference/<case>/: input.jsonl holds the
// normalized snapshot and directory chunks as the rbac-agent and entra-agent
// produced them from the clusters under testdata/reference and examples/
// (one protojson AssessRequest per line), approved.json the approved output.
// Regenerate both with `go test ./e2e -run TestRegressionReference -update`
// in test/, and review the diff.
package regression

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

//go:embed reference
var referenceFS embed.FS

// Case is one reference case.
type Case struct {
	Name     string
	Input    []*secureauditv1.AssessRequest
	Approved Approved
}

// Approved is a case's approved output.
type Approved struct {
	// Findings are the approved deterministic findings, one line each:
	// "ID RULE SEVERITY SUBJECT BINDING", sorted.
	Findings []string `json:"findings"`
	// CatalogueVersion is the rule catalogue that produced them.
	CatalogueVersion string `json:"catalogueVersion"`
	// ReasoningProvider, Model and TemplateVersion are the reasoning step's,
	// "none" and empty for deterministic text.
	ReasoningProvider string `json:"reasoningProvider"`
	Model             string `json:"model,omitempty"`
	TemplateVersion   string `json:"templateVersion,omitempty"`
	// Tokens is the approved total of model tokens; 0 when no model ran.
	Tokens uint64 `json:"tokens,omitempty"`
}

// TokenBand is how far token use may move from the approved total.
const TokenBand = 0.5

// Summary length bounds of the model's executive summary, in characters.
const (
	MinSummary = 1
	MaxSummary = 4000
)

// LoadCases reads the embedded reference cases.
func LoadCases() ([]*Case, error) { return loadCases(referenceFS, "reference") }

func loadCases(fsys fs.FS, root string) ([]*Case, error) {
	dirs, err := fs.ReadDir(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("read reference cases: %w", err)
	}
	var out []*Case
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		c := &Case{Name: d.Name()}
		in, err := fs.ReadFile(fsys, path.Join(root, d.Name(), "input.jsonl"))
		if err != nil {
			return nil, fmt.Errorf("reference case %s: %w", d.Name(), err)
		}
		if c.Input, err = ParseInput(in); err != nil {
			return nil, fmt.Errorf("reference case %s: %w", d.Name(), err)
		}
		ap, err := fs.ReadFile(fsys, path.Join(root, d.Name(), "approved.json"))
		if err != nil {
			return nil, fmt.Errorf("reference case %s: %w", d.Name(), err)
		}
		if err := json.Unmarshal(ap, &c.Approved); err != nil {
			return nil, fmt.Errorf("reference case %s: approved.json: %w", d.Name(), err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no reference cases")
	}
	return out, nil
}

// ParseInput reads input.jsonl.
func ParseInput(data []byte) ([]*secureauditv1.AssessRequest, error) {
	var out []*secureauditv1.AssessRequest
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var req secureauditv1.AssessRequest
		if err := protojson.Unmarshal(sc.Bytes(), &req); err != nil {
			return nil, fmt.Errorf("input.jsonl line %d: %w", n, err)
		}
		if req.GetHeader() != nil {
			return nil, fmt.Errorf("input.jsonl line %d: holds a header; the run sets it", n)
		}
		out = append(out, &req)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input.jsonl: %w", err)
	}
	return out, nil
}

// FindingLine is how approved.json names a finding.
func FindingLine(f *secureauditv1.Finding) string {
	s, b := "-", "-"
	if x := f.GetSubject(); x != nil {
		s = strings.TrimPrefix(x.GetKind().String(), "SUBJECT_KIND_") + ":" + x.GetNamespace() + "/" + x.GetName()
	}
	if x := f.GetBinding(); x != nil {
		b = strings.TrimPrefix(x.GetKind().String(), "BINDING_KIND_") + ":" + x.GetNamespace() + "/" + x.GetName()
	}
	return strings.Join([]string{f.GetId(), f.GetRuleId(), strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"), s, b}, " ")
}

// Output is what the live pipeline produced for a case.
type Output struct {
	Findings  []*secureauditv1.Finding
	Summary   *secureauditv1.AssessSummary
	Reasoning *secureauditv1.Reasoning
	// Rendered is the size of each rendered document.
	Rendered map[secureauditv1.ReportFormat]int
}

// Approve returns the approved output that o would be.
func (o *Output) Approve() Approved {
	a := Approved{CatalogueVersion: o.Summary.GetCatalogueVersion(), ReasoningProvider: o.Summary.GetReasoningProvider(), Findings: []string{}}
	for _, f := range o.Findings {
		a.Findings = append(a.Findings, FindingLine(f))
	}
	sort.Strings(a.Findings)
	if r := o.Reasoning; r != nil {
		a.Model, a.TemplateVersion = r.GetModel(), r.GetTemplateVersion()
	}
	a.Tokens = tokens(o.Summary)
	return a
}

func tokens(s *secureauditv1.AssessSummary) uint64 {
	var n uint64
	for _, c := range s.GetModelCalls() {
		n += c.GetInputTokens() + c.GetOutputTokens()
	}
	return n
}

// Compare checks an output against the approved one and returns the case
// result.
func Compare(c *Case, o *Output) *secureauditv1.RegressionCase {
	res := &secureauditv1.RegressionCase{Name: c.Name, ExpectedFindings: uint32(len(c.Approved.Findings)), ActualFindings: uint32(len(o.Findings)),
		ReasoningProvider: o.Summary.GetReasoningProvider(), CatalogueVersion: o.Summary.GetCatalogueVersion()}
	got := o.Approve()
	key := func(line string) string { // rule, subject, binding
		f := strings.Fields(line)
		return strings.Join(append([]string{f[1]}, f[3:]...), " ")
	}
	want := map[string]string{}
	for _, l := range c.Approved.Findings {
		want[key(l)] = l
	}
	have := map[string]string{}
	for _, l := range got.Findings {
		have[key(l)] = l
	}
	for k, l := range have {
		w, ok := want[k]
		switch {
		case !ok:
			res.New = append(res.New, l)
		case w != l:
			res.Changed = append(res.Changed, w+" -> "+l)
		}
	}
	for k, l := range want {
		if _, ok := have[k]; !ok {
			res.Absent = append(res.Absent, l)
		}
	}
	sort.Strings(res.New)
	sort.Strings(res.Absent)
	sort.Strings(res.Changed)
	if got.CatalogueVersion != c.Approved.CatalogueVersion {
		res.Problems = append(res.Problems, fmt.Sprintf("catalogue version %s, approved %s", got.CatalogueVersion, c.Approved.CatalogueVersion))
	}
	res.Problems = append(res.Problems, structural(o)...)
	if c.Approved.Tokens > 0 || got.Tokens > 0 {
		lo, hi := float64(c.Approved.Tokens)*(1-TokenBand), float64(c.Approved.Tokens)*(1+TokenBand)
		if t := float64(got.Tokens); t < lo || t > hi {
			res.Problems = append(res.Problems, fmt.Sprintf("model tokens %d outside the approved band %.0f-%.0f", got.Tokens, lo, hi))
		}
	}
	for _, want := range []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_JSON} {
		if o.Rendered != nil && o.Rendered[want] == 0 {
			res.Problems = append(res.Problems, "the report-agent rendered no "+want.String())
		}
	}
	res.Passed = len(res.New) == 0 && len(res.Absent) == 0 && len(res.Changed) == 0 && len(res.Problems) == 0
	return res
}

// structural checks the model's output: it may only reference existing
// findings, must cover all of them when a model answered, and its summary
// must be within bounds.
func structural(o *Output) []string {
	r := o.Reasoning
	if r == nil {
		return nil
	}
	var problems []string
	ids := map[string]bool{}
	for _, f := range o.Findings {
		ids[f.GetId()] = true
	}
	covered := map[string]bool{}
	for _, a := range r.GetAnnotations() {
		if !ids[a.GetFindingId()] {
			problems = append(problems, "reasoning annotates finding "+a.GetFindingId()+", which does not exist")
		}
		covered[a.GetFindingId()] = true
	}
	if r.GetProvider() != "none" {
		var missing []string
		for id := range ids {
			if !covered[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			problems = append(problems, fmt.Sprintf("reasoning leaves %d findings without an annotation, such as %s", len(missing), missing[0]))
		}
	}
	if n := len([]rune(r.GetExecutiveSummary())); n < MinSummary || n > MaxSummary {
		problems = append(problems, fmt.Sprintf("executive summary of %d characters, outside %d-%d", n, MinSummary, MaxSummary))
	}
	return problems
}

// Agents are the live agents a run goes through.
type Agents struct {
	Risk   secureauditv1.RiskServiceClient
	Report secureauditv1.ReportServiceClient
}

// RunCase runs one case through the live agents.
func RunCase(ctx context.Context, agents Agents, c *Case) (*Output, string, error) {
	id := uuid.NewString()
	dir := false
	for _, r := range c.Input {
		dir = dir || r.GetDirectory() != nil
	}
	stream, err := agents.Risk.Assess(ctx)
	if err != nil {
		return nil, id, fmt.Errorf("risk-agent: assess: %w", err)
	}
	reqs := append([]*secureauditv1.AssessRequest{{Part: &secureauditv1.AssessRequest_Header{Header: &secureauditv1.AssessHeader{AuditId: id, DirectoryAvailable: dir}}}}, c.Input...)
	for _, r := range reqs {
		if err := stream.Send(r); err != nil {
			if errors.Is(err, io.EOF) {
				_, err = stream.Recv()
			}
			return nil, id, fmt.Errorf("risk-agent: assess: %w", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, id, fmt.Errorf("risk-agent: assess: %w", err)
	}
	o := &Output{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, id, fmt.Errorf("risk-agent: assess: %w", err)
		}
		switch p := resp.GetPart().(type) {
		case *secureauditv1.AssessResponse_Findings:
			o.Findings = append(o.Findings, p.Findings.GetFindings()...)
		case *secureauditv1.AssessResponse_Summary:
			o.Summary = p.Summary
		case *secureauditv1.AssessResponse_Reasoning:
			o.Reasoning = p.Reasoning
		}
	}
	if o.Summary == nil {
		return nil, id, errors.New("risk-agent: assess: no summary")
	}
	if agents.Report != nil {
		if o.Rendered, err = render(ctx, agents.Report, id, o); err != nil {
			return nil, id, err
		}
	}
	return o, id, nil
}

// render renders the case's report as Markdown and JSON and returns the sizes.
func render(ctx context.Context, client secureauditv1.ReportServiceClient, id string, o *Output) (map[secureauditv1.ReportFormat]int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Render(ctx)
	if err != nil {
		return nil, fmt.Errorf("report-agent: render: %w", err)
	}
	report := &secureauditv1.Report{AuditId: id, Cluster: "regression", Counts: o.Summary.GetCounts(), CatalogueVersion: o.Summary.GetCatalogueVersion(),
		ReasoningProvider: o.Summary.GetReasoningProvider(), Summary: &secureauditv1.SeverityCounts{}, Controls: o.Summary.GetControls()}
	report.GeneratedAt = timestamppb.New(time.Now())
	formats := []secureauditv1.ReportFormat{secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_JSON}
	if err := stream.Send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Header{Header: &secureauditv1.RenderHeader{Report: report, Formats: formats, FindingCount: uint32(len(o.Findings))}}}); err != nil {
		return nil, fmt.Errorf("report-agent: render: %w", err)
	}
	for start := 0; start < len(o.Findings); start += 500 {
		end := min(start+500, len(o.Findings))
		if err := stream.Send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Findings{Findings: &secureauditv1.FindingBatch{Findings: o.Findings[start:end]}}}); err != nil {
			return nil, fmt.Errorf("report-agent: render: %w", err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, fmt.Errorf("report-agent: render: %w", err)
	}
	sizes := map[secureauditv1.ReportFormat]int{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return sizes, nil
		}
		if err != nil {
			return nil, fmt.Errorf("report-agent: render: %w", err)
		}
		sizes[resp.GetFormat()] += len(resp.GetData())
	}
}
