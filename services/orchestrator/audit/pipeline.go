// Package audit runs audits through the agents and serves the orchestrator's
// public AuditService. Only the orchestrator calls agents; each stage checks
// what it received (counts, order) so that nothing is silently lost.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/compact"
	"secureaudit.dev/platform/validation"
)

// Agents are the clients of the four agents. Entra is nil when no entra-agent
// is configured; audits then run without identity data and say so.
type Agents struct {
	RBAC   secureauditv1.RBACServiceClient
	Entra  secureauditv1.EntraServiceClient
	Risk   secureauditv1.RiskServiceClient
	Report secureauditv1.ReportServiceClient
}

// batchSize bounds the findings and principals sent per message.
const (
	findingBatch   = 500
	principalBatch = 1000
	// findingBatchBytes bounds the encoded findings of one message, well
	// under the RPC message limit.
	findingBatchBytes = 8 << 20
)

// Formats are every document the report-agent renders, in the order an
// audit that names none renders them.
var Formats = []secureauditv1.ReportFormat{
	secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN,
	secureauditv1.ReportFormat_REPORT_FORMAT_JSON,
	secureauditv1.ReportFormat_REPORT_FORMAT_HTML,
	secureauditv1.ReportFormat_REPORT_FORMAT_SARIF,
	secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL,
	secureauditv1.ReportFormat_REPORT_FORMAT_CSV,
}

// snapshot is a collected snapshot: its chunks as received (validated on
// arrival, and forwarded to the risk-agent unchanged: forwarded holds them).
type snapshot struct {
	header    *secureauditv1.SnapshotHeader
	trailer   *secureauditv1.SnapshotTrailer
	chunks    []*secureauditv1.SnapshotChunk
	forwarded *validation.Forwarded
}

// collect streams the snapshot from the rbac-agent and checks it is whole:
// header first, trailer last, counts matching what arrived.
func collect(ctx context.Context, client secureauditv1.RBACServiceClient, auditID string) (*snapshot, error) {
	stream, err := client.Collect(ctx, &secureauditv1.CollectRequest{AuditId: auditID})
	if err != nil {
		return nil, fmt.Errorf("rbac-agent: collect: %w", err)
	}
	s := &snapshot{forwarded: validation.NewForwarded()}
	var got secureauditv1.ObjectCounts
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("rbac-agent: collect: %w", err)
		}
		c := resp.GetChunk()
		if s.trailer != nil {
			return nil, errors.New("rbac-agent: collect: chunk after the trailer")
		}
		if c.GetHeader() != nil {
			if len(s.chunks) > 0 {
				return nil, errors.New("rbac-agent: collect: header in a later chunk")
			}
			s.header = c.GetHeader()
		} else if len(s.chunks) == 0 {
			return nil, errors.New("rbac-agent: collect: first chunk has no header")
		}
		addCounts(&got, c)
		s.trailer = c.GetTrailer()
		s.chunks = append(s.chunks, c)
		s.forwarded.Add(c)
	}
	if s.header == nil || s.trailer == nil {
		return nil, errors.New("rbac-agent: collect: snapshot ended without header or trailer")
	}
	if !proto.Equal(&got, s.trailer.GetCounts()) {
		return nil, fmt.Errorf("rbac-agent: collect: snapshot incomplete: trailer counts %v, received %v", s.trailer.GetCounts(), &got)
	}
	return s, nil
}

func addCounts(c *secureauditv1.ObjectCounts, chunk *secureauditv1.SnapshotChunk) {
	c.Namespaces += uint32(len(chunk.GetNamespaces()))
	c.Roles += uint32(len(chunk.GetRoles()))
	c.ClusterRoles += uint32(len(chunk.GetClusterRoles()))
	c.RoleBindings += uint32(len(chunk.GetRoleBindings()))
	c.ClusterRoleBindings += uint32(len(chunk.GetClusterRoleBindings()))
	c.ServiceAccounts += uint32(len(chunk.GetServiceAccounts()))
	c.Workloads += uint32(len(chunk.GetWorkloads()))
}

// principals lists the users and groups the snapshot's bindings name, except
// Kubernetes' own system: identities, and the client IDs of workload
// identity ServiceAccounts, sorted and without repeats.
func (s *snapshot) principals() []*secureauditv1.Principal {
	seen := map[string]*secureauditv1.Principal{}
	add := func(subjects []*secureauditv1.Subject) {
		for _, sub := range subjects {
			var kind secureauditv1.PrincipalKind
			switch sub.GetKind() {
			case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
				kind = secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER
			case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
				kind = secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP
			default:
				continue
			}
			if strings.HasPrefix(sub.GetName(), "system:") {
				continue
			}
			seen[kind.String()+"/"+sub.GetName()] = &secureauditv1.Principal{Kind: kind, Name: sub.GetName()}
		}
	}
	for _, c := range s.chunks {
		for _, b := range c.GetRoleBindings() {
			add(b.GetSubjects())
		}
		for _, b := range c.GetClusterRoleBindings() {
			add(b.GetSubjects())
		}
		// Workload identities: the managed identity or app a ServiceAccount
		// names by client ID.
		for _, sa := range c.GetServiceAccounts() {
			if id := sa.GetMeta().GetAnnotations()["azure.workload.identity/client-id"]; id != "" {
				kind := secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID
				seen[kind.String()+"/"+id] = &secureauditv1.Principal{Kind: kind, Name: id}
			}
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*secureauditv1.Principal, 0, len(keys))
	for _, k := range keys {
		out = append(out, seen[k])
	}
	return out
}

// directory is what the entra-agent returned.
type directory struct {
	chunks     []*secureauditv1.DirectoryChunk
	unresolved int
	partial    bool
	errors     []*secureauditv1.LookupError // lookups that failed after retries
	excess     []string                     // Graph permissions beyond the agent's read-only set
	// streams are what each Resolve stream (one per batch of principals)
	// presented, in order: every one is checked (entraChoice.check), not
	// only the first.
	streams []presented
}

// presented is what one Resolve stream of the entra-agent presented: the
// Entra tenant and the AKS cluster (ARM resource ID) it read.
type presented struct {
	// tenant and aks are what its first chunk presented, empty when none.
	tenant, aks string
	// tenants and clusters are every non-empty tenant and cluster any of
	// its chunks presented, each once, in order.
	tenants, clusters []string
	// azure is true when it carries Azure access: role or deny assignments
	// or an AKS cluster's configuration.
	azure bool
}

// add records what chunk c of the stream presented; first is true for the
// stream's first chunk.
func (p *presented) add(c *secureauditv1.DirectoryChunk, first bool) {
	t, a := strings.ToLower(c.GetTenantId()), c.GetClusterResourceId()
	if first {
		p.tenant, p.aks = t, a
	}
	if t != "" && !slices.Contains(p.tenants, t) {
		p.tenants = append(p.tenants, t)
	}
	if a != "" && !slices.ContainsFunc(p.clusters, func(b string) bool { return strings.EqualFold(a, b) }) {
		p.clusters = append(p.clusters, a)
	}
	p.azure = p.azure || len(c.GetRoleAssignments()) > 0 || len(c.GetDenyAssignments()) > 0 || c.GetAksCluster() != nil
}

// warnings are the audit events a directory answer calls for: a partial
// answer, with its failed lookups (at most ten named), and the entra-agent's
// excess Graph permissions.
func (d *directory) warnings() []string {
	var out []string
	if d.partial {
		var named []string
		for _, e := range d.errors[:min(len(d.errors), 10)] {
			named = append(named, e.GetLookup()+": "+e.GetMessage())
		}
		msg := fmt.Sprintf("identity data is partial: %d directory lookups failed: %s", len(d.errors), strings.Join(named, "; "))
		if len(d.errors) > len(named) {
			msg += fmt.Sprintf("; and %d more", len(d.errors)-len(named))
		}
		out = append(out, msg)
	}
	if len(d.excess) > 0 {
		out = append(out, "violation: the entra-agent's credential holds Graph application permissions beyond its read-only set: "+strings.Join(d.excess, ", "))
	}
	return out
}

// resolve asks the entra-agent about the principals, in batches, for the
// AKS cluster aks (its ARM resource ID, empty when unknown).
func resolve(ctx context.Context, client secureauditv1.EntraServiceClient, auditID, aks string, principals []*secureauditv1.Principal) (*directory, error) {
	d := &directory{}
	for start := 0; start < len(principals); start += principalBatch {
		end := min(start+principalBatch, len(principals))
		stream, err := client.Resolve(ctx, &secureauditv1.ResolveRequest{AuditId: auditID, Principals: principals[start:end], ClusterResourceId: aks})
		if err != nil {
			return nil, fmt.Errorf("entra-agent: resolve: %w", err)
		}
		var seen presented
		for first := true; ; first = false {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("entra-agent: resolve: %w", err)
			}
			c := resp.GetChunk()
			seen.add(c, first)
			d.unresolved += len(c.GetUnresolved())
			d.partial = d.partial || c.GetPartial() || len(c.GetErrors()) > 0
			d.errors = append(d.errors, c.GetErrors()...)
			for _, p := range c.GetExcessPermissions() {
				if !slices.Contains(d.excess, p) {
					d.excess = append(d.excess, p)
				}
			}
			d.chunks = append(d.chunks, c)
		}
		d.streams = append(d.streams, seen)
	}
	return d, nil
}

// assessment is what the risk-agent returned.
type assessment struct {
	findings  []*secureauditv1.Finding
	reasoning *secureauditv1.Reasoning
	summary   *secureauditv1.AssessSummary
}

// assess streams the snapshot and directory to the risk-agent and collects
// the findings, checking their number against the summary. The snapshot's
// chunks, validated when they arrived, are not validated again before they
// leave (the risk-agent validates them on arrival). Each batch of findings,
// validated on arrival, is handed to relay (when not nil) as it arrives.
func assess(ctx context.Context, client secureauditv1.RiskServiceClient, auditID string, snap *snapshot, dir *directory, relay func([]*secureauditv1.Finding)) (*assessment, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Assess(validation.WithForwarded(ctx, snap.forwarded))
	if err != nil {
		return nil, fmt.Errorf("risk-agent: assess: %w", err)
	}
	send := func(req *secureauditv1.AssessRequest) error {
		if err := stream.Send(req); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream; its status says why.
				_, rerr := stream.Recv()
				return fmt.Errorf("risk-agent: assess: %w", rerr)
			}
			return fmt.Errorf("risk-agent: assess: %w", err)
		}
		return nil
	}
	header := &secureauditv1.AssessHeader{AuditId: auditID, DirectoryAvailable: dir != nil}
	if err := send(&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Header{Header: header}}); err != nil {
		return nil, err
	}
	for _, c := range snap.chunks {
		if err := send(&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Snapshot{Snapshot: c}}); err != nil {
			return nil, err
		}
	}
	if dir != nil {
		for _, c := range dir.chunks {
			if err := send(&secureauditv1.AssessRequest{Part: &secureauditv1.AssessRequest_Directory{Directory: c}}); err != nil {
				return nil, err
			}
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, fmt.Errorf("risk-agent: assess: %w", err)
	}
	a := &assessment{}
	// The findings share what repeats among them (see compact): they are
	// held until rendered and stored, and are sent and stored unchanged.
	share := compact.New()
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("risk-agent: assess: %w", err)
		}
		if a.summary != nil {
			return nil, errors.New("risk-agent: assess: message after the summary")
		}
		switch p := resp.GetPart().(type) {
		case *secureauditv1.AssessResponse_Findings:
			a.findings = append(a.findings, p.Findings.GetFindings()...)
			for _, f := range p.Findings.GetFindings() {
				share.Finding(f)
			}
			if relay != nil {
				relay(p.Findings.GetFindings())
			}
		case *secureauditv1.AssessResponse_Summary:
			a.summary = p.Summary
		case *secureauditv1.AssessResponse_Reasoning:
			a.reasoning = p.Reasoning
		}
	}
	if a.summary == nil {
		return nil, errors.New("risk-agent: assess: stream ended without a summary")
	}
	if int(a.summary.GetFindingCount()) != len(a.findings) {
		return nil, fmt.Errorf("risk-agent: assess: summary counts %d findings, received %d", a.summary.GetFindingCount(), len(a.findings))
	}
	return a, nil
}

// renderEach sends the report and its findings to the report-agent and
// hands each chunk of each document to emit as it arrives, with its
// sequence number in its document (from 0) and whether it is the
// document's last, keeping none: the caller stores it and lets it go, so
// that the orchestrator never holds a document (at 100,000 objects the six
// formats are 700 MB together). Findings in forwarded (may be nil),
// received from the risk-agent and validated then, are not validated again
// before they leave; findings read from the store are.
//
// With actions set, the report-agent answers the findings with the
// report's actions (the findings whose action is Revoke) before it
// renders: actions tracks them and returns the review state, which is
// sent back for the report to show. The report-agent alone decides the
// actions; an error of actions fails the rendering.
//
// opts are the call's options (the fallback of an audit whose relay ended
// waits for the report-agent to be ready again: grpc.WaitForReady).
func renderEach(ctx context.Context, client secureauditv1.ReportServiceClient, report *secureauditv1.Report, findings []*secureauditv1.Finding, forwarded *validation.Forwarded, formats []secureauditv1.ReportFormat, actions func(*secureauditv1.RenderActions) (*secureauditv1.ReviewState, error), emit func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	header := &secureauditv1.RenderHeader{Report: report, Formats: formats, FindingCount: uint32(len(findings)), ReviewFollows: actions != nil}
	rs, err := openRender(validation.WithForwarded(ctx, forwarded), client, header, opts...)
	if err != nil {
		return err
	}
	for _, batch := range batches(findings) {
		if err := rs.send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Findings{Findings: batch}}); err != nil {
			return err
		}
	}
	// Every finding has been sent: the set lets go of them, so that the
	// render stage, chunks arriving, no longer holds them here.
	forwarded.Clear()
	return rs.finish(formats, actions, emit)
}

// batches splits findings into batches of at most findingBatch findings
// and findingBatchBytes of them: findings quoting the rules of a large role
// are large.
func batches(findings []*secureauditv1.Finding) []*secureauditv1.FindingBatch {
	var out []*secureauditv1.FindingBatch
	for start := 0; start < len(findings); {
		end, size := start, 0
		for end < len(findings) && end-start < findingBatch {
			n := proto.Size(findings[end])
			if end > start && size+n > findingBatchBytes {
				break
			}
			size += n
			end++
		}
		out = append(out, &secureauditv1.FindingBatch{Findings: findings[start:end]})
		start = end
	}
	return out
}

// renderStream is one Render call to the report-agent, its header sent.
type renderStream struct {
	stream grpc.BidiStreamingClient[secureauditv1.RenderRequest, secureauditv1.RenderResponse]
}

// openRender opens a Render call with ctx and sends its header.
func openRender(ctx context.Context, client secureauditv1.ReportServiceClient, header *secureauditv1.RenderHeader, opts ...grpc.CallOption) (*renderStream, error) {
	stream, err := client.Render(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("report-agent: render: %w", err)
	}
	rs := &renderStream{stream: stream}
	if err := rs.send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Header{Header: header}}); err != nil {
		return nil, err
	}
	return rs, nil
}

// send sends one request; when the report-agent has ended the call, the
// error is the status it ended it with.
func (rs *renderStream) send(req *secureauditv1.RenderRequest) error {
	if err := rs.stream.Send(req); err != nil {
		if errors.Is(err, io.EOF) {
			_, rerr := rs.stream.Recv()
			return fmt.Errorf("report-agent: render: %w", rerr)
		}
		return fmt.Errorf("report-agent: render: %w", err)
	}
	return nil
}

// finish goes on once the findings (and, with report_follows, the report)
// are sent: the actions exchange when actions is set, then the documents,
// each chunk handed to emit (see renderEach).
func (rs *renderStream) finish(formats []secureauditv1.ReportFormat, actions func(*secureauditv1.RenderActions) (*secureauditv1.ReviewState, error), emit func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error) error {
	stream := rs.stream
	if actions != nil {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("report-agent: render: the stream ended before the report's actions")
			}
			return fmt.Errorf("report-agent: render: %w", err)
		}
		if resp.GetActions() == nil {
			return fmt.Errorf("report-agent: render: a %s chunk before the report's actions", resp.GetFormat())
		}
		review, err := actions(resp.GetActions())
		if err != nil {
			return err
		}
		if review == nil {
			review = &secureauditv1.ReviewState{}
		}
		if err := rs.send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Review{Review: review}}); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return fmt.Errorf("report-agent: render: %w", err)
	}
	next := map[secureauditv1.ReportFormat]int{}
	done := map[secureauditv1.ReportFormat]bool{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("report-agent: render: %w", err)
		}
		if resp.GetActions() != nil {
			return errors.New("report-agent: render: the report's actions sent again, or unasked")
		}
		f := resp.GetFormat()
		if done[f] {
			return fmt.Errorf("report-agent: render: %s chunk after its last", f)
		}
		seq := next[f]
		next[f]++
		if resp.GetLast() {
			done[f] = true
		}
		if err := emit(f, seq, resp.GetData(), resp.GetLast()); err != nil {
			return err
		}
	}
	for _, f := range formats {
		if !done[f] {
			return fmt.Errorf("report-agent: render: %s document incomplete", f)
		}
	}
	return nil
}

// findingRelay is a Render call whose header says report_follows: it
// sends the findings the risk-agent streams on to the report-agent as they
// arrive, on a goroutine of its own, so that the report-agent receives and
// checks them while the risk-agent is still sending. It never blocks the
// assess stage that hands it the findings: a report-agent slower than the
// risk-agent makes it lag, not wait (the findings are held for storing
// anyway). Once they are assessed, the render stage sends the report that
// ends them (end), waiting for the relay under its own budget.
type findingRelay struct {
	rs     *renderStream // nil when the call could not be opened
	cancel context.CancelFunc
	// forwarded are the findings sent, validated when they arrived from
	// the risk-agent: only the relay's goroutine adds to it, just before
	// it sends them.
	forwarded *validation.Forwarded

	mu     sync.Mutex
	queue  []*secureauditv1.FindingBatch
	closed bool
	wake   chan struct{}

	done chan struct{} // closed when the goroutine ends
	err  error         // why it ended early; read after done
	sent int           // findings sent; read after done
}

// startFindingRelay opens the Render call and starts its relay. ctx bounds
// the call: the caller stops it when the audit ends, early or not. A call
// that cannot be opened (the report-agent is restarting) is a relay that
// has already ended with that error: the audit assesses all the same, and
// its render stage renders from the stored findings (end's relayError).
func startFindingRelay(ctx context.Context, client secureauditv1.ReportServiceClient, formats []secureauditv1.ReportFormat, reviewFollows bool) *findingRelay {
	ctx, cancel := context.WithCancel(ctx)
	fr := &findingRelay{cancel: cancel, forwarded: validation.NewForwarded(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	header := &secureauditv1.RenderHeader{Formats: formats, ReviewFollows: reviewFollows, ReportFollows: true}
	if fr.rs, fr.err = openRender(validation.WithForwarded(ctx, fr.forwarded), client, header); fr.err != nil {
		cancel()
		close(fr.done)
		return fr
	}
	go fr.run()
	return fr
}

// add queues a batch of findings as it arrived from the risk-agent
// (validated then, and changed by no one afterwards); a relay that has
// ended keeps none.
func (fr *findingRelay) add(findings []*secureauditv1.Finding) {
	select {
	case <-fr.done:
		return
	default:
	}
	fr.mu.Lock()
	fr.queue = append(fr.queue, batches(findings)...)
	fr.mu.Unlock()
	fr.signal()
}

func (fr *findingRelay) signal() {
	select {
	case fr.wake <- struct{}{}:
	default:
	}
}

func (fr *findingRelay) run() {
	defer close(fr.done)
	for {
		fr.mu.Lock()
		queue, closed := fr.queue, fr.closed
		fr.queue = nil
		fr.mu.Unlock()
		for _, batch := range queue {
			for _, f := range batch.GetFindings() {
				fr.forwarded.Add(f)
			}
			if err := fr.rs.send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Findings{Findings: batch}}); err != nil {
				fr.err = err
				return
			}
			fr.sent += len(batch.GetFindings())
		}
		if closed && len(queue) == 0 {
			return
		}
		if len(queue) == 0 {
			<-fr.wake
		}
	}
}

// close says no more findings are added.
func (fr *findingRelay) close() {
	fr.mu.Lock()
	fr.closed = true
	fr.mu.Unlock()
	fr.signal()
}

// wait waits until every finding added is sent (add no more) and returns
// why they were not; the set then lets go of them.
func (fr *findingRelay) wait() error {
	fr.close()
	<-fr.done
	fr.forwarded.Clear()
	return fr.err
}

// stop ends the call (a no-op once it has ended) and waits for the relay's
// goroutine.
func (fr *findingRelay) stop() {
	fr.cancel()
	fr.close()
	<-fr.done
}

// end waits until every finding added is sent, then sends the report that
// ends them, count being the number added, with the findings the report
// withholds; then it goes on as renderEach does.
//
// An error that ended the call before the report was sent (the report-agent
// restarted, refused the call or is of a version before report_follows) is
// a relayError: nothing of this call was rendered or tracked, and the
// caller may render from the findings again (renderEach).
func (fr *findingRelay) end(report *secureauditv1.Report, count int, withheld []string, formats []secureauditv1.ReportFormat, actions func(*secureauditv1.RenderActions) (*secureauditv1.ReviewState, error), emit func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error) error {
	if err := fr.wait(); err != nil {
		return &relayError{err}
	}
	if fr.sent != count {
		return fmt.Errorf("report-agent: render: relayed %d findings of %d", fr.sent, count)
	}
	end := &secureauditv1.RenderReport{Report: report, FindingCount: uint32(count), WithheldFindingIds: withheld}
	if err := fr.rs.send(&secureauditv1.RenderRequest{Part: &secureauditv1.RenderRequest_Report{Report: end}}); err != nil {
		return &relayError{err}
	}
	return fr.rs.finish(formats, actions, emit)
}

// relayError is a findingRelay's call ended before its report was sent.
type relayError struct{ err error }

func (e *relayError) Error() string { return e.err.Error() }
func (e *relayError) Unwrap() error { return e.err }

// unavailable reports whether an agent error means the agent could not serve
// (unreachable, or not configured with a source), as opposed to a fault.
func unavailable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.FailedPrecondition, codes.Unimplemented, codes.DeadlineExceeded:
		return true
	}
	return false
}

// chunkStore is where rendered documents are stored chunk by chunk.
type chunkStore interface {
	SaveReportChunk(ctx context.Context, auditID string, format secureauditv1.ReportFormat, seq int, data []byte) error
	FinishReport(ctx context.Context, auditID string, format secureauditv1.ReportFormat, chunks int) error
}

// storeChunks is a renderEach emit that stores each chunk as it arrives
// and records the document once its last chunk is stored.
func storeChunks(ctx context.Context, st chunkStore, auditID string) func(secureauditv1.ReportFormat, int, []byte, bool) error {
	return func(f secureauditv1.ReportFormat, seq int, data []byte, last bool) error {
		if err := st.SaveReportChunk(ctx, auditID, f, seq, data); err != nil {
			return err
		}
		if last {
			return st.FinishReport(ctx, auditID, f, seq+1)
		}
		return nil
	}
}
