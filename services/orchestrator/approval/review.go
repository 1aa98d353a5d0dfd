package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/people"
)

// Observation is what was seen of one (server, method, caller, outcome).
type Observation struct {
	Server string    `json:"server"`
	Method string    `json:"method"`
	Caller string    `json:"caller"`
	Code   string    `json:"code"`
	Count  int64     `json:"count"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	// Deviation says how the observation departs from the manifest, if it does.
	Deviation string `json:"deviation,omitempty"`
}

// WorkloadReview is the review of one workload.
type WorkloadReview struct {
	Workload         string        `json:"workload"`
	DeclaredDigest   string        `json:"declaredDigest"`
	ApprovedDigest   string        `json:"approvedDigest,omitempty"`
	Approver         string        `json:"approver,omitempty"`
	Ticket           string        `json:"ticket,omitempty"`
	Development      bool          `json:"development,omitempty"`
	ApprovalAgeDays  float64       `json:"approvalAgeDays,omitempty"`
	Observations     []Observation `json:"observations"`
	UnusedMethods    []string      `json:"unusedMethods,omitempty"`
	DeclaredEgress   []string      `json:"declaredEgress"`
	DeclaredCredKind string        `json:"declaredCredential"`
}

// Review is the scope review report.
type Review struct {
	Since      time.Time        `json:"since"`
	Until      time.Time        `json:"until"`
	Workloads  []WorkloadReview `json:"workloads"`
	Deviations int              `json:"deviations"`
	// ReviewedBy is the person a verified ID token named (issuer, sub,
	// oid, name, email); empty for reviews not recorded or recorded under
	// a typed development name.
	ReviewedBy map[string]string `json:"reviewedBy,omitempty"`
}

// Review compares each manifest with the behaviour observed since the last
// recorded review. With a reviewer, the review is appended to the evidence
// log and a new period starts; its index is returned (or -1).
func (r *Registry) Review(ctx context.Context, reviewer string) (*Review, string, int64, error) {
	return r.review(ctx, reviewer, nil)
}

// ReviewAs is Review recorded under the person idToken names (verified), or,
// with WithUnverifiedApprovers only, a typed name marked unverified; with
// neither, the review is not recorded.
func (r *Registry) ReviewAs(ctx context.Context, idToken, typed string) (*Review, string, int64, error) {
	if idToken == "" && typed == "" {
		return r.review(ctx, "", nil)
	}
	by, err := r.person(ctx, idToken, typed)
	if err != nil {
		return nil, "", -1, err
	}
	if by == nil {
		return r.review(ctx, "UNVERIFIED (development): "+typed, nil)
	}
	return r.review(ctx, truncate(people.Display(by), 256), by)
}

func (r *Registry) review(ctx context.Context, reviewer string, by *secureauditv1.Decider) (*Review, string, int64, error) {
	if err := r.Flush(ctx); err != nil {
		return nil, "", -1, err
	}
	period, err := r.period(ctx)
	if err != nil {
		return nil, "", -1, err
	}
	rev := &Review{Until: r.now().UTC(), ReviewedBy: personJSON(by)}
	var sinceNS int64
	if err := r.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(reviewed_ns), 0) FROM scope_reviews`).Scan(&sinceNS); err != nil {
		return nil, "", -1, fmt.Errorf("read last review: %w", err)
	}
	if sinceNS > 0 {
		rev.Since = time.Unix(0, sinceNS).UTC()
	}
	rows, err := r.db.QueryContext(ctx, `SELECT server, method, caller, code, count, first_ns, last_ns FROM scope_calls WHERE period = ? ORDER BY server, method, caller, code`, period)
	if err != nil {
		return nil, "", -1, fmt.Errorf("read observed calls: %w", err)
	}
	byServer := map[string][]Observation{}
	for rows.Next() {
		var o Observation
		var code int
		var first, last int64
		if err := rows.Scan(&o.Server, &o.Method, &o.Caller, &code, &o.Count, &first, &last); err != nil {
			rows.Close()
			return nil, "", -1, fmt.Errorf("read observed calls: %w", err)
		}
		o.Code, o.First, o.Last = codes.Code(code).String(), time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		byServer[o.Server] = append(byServer[o.Server], o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", -1, fmt.Errorf("read observed calls: %w", err)
	}

	names := make([]string, 0, len(r.manifests))
	for w := range r.manifests {
		names = append(names, w)
	}
	for w := range byServer {
		if _, ok := r.manifests[w]; !ok {
			names = append(names, w)
		}
	}
	sort.Strings(names)
	for _, w := range names {
		wr := WorkloadReview{Workload: w, Observations: []Observation{}}
		m := r.manifests[w]
		declared := map[string][]string{}
		// Methods of a public API name a role; the caller policy, not the
		// manifest, says who holds it, and the guard let only those through.
		byRole := map[string]bool{}
		if m != nil {
			wr.DeclaredDigest, wr.DeclaredEgress, wr.DeclaredCredKind = m.Digest(), m.Spec.Egress, m.Spec.Credential.Kind
			for _, meth := range m.Spec.Methods {
				declared[meth.Name] = meth.Callers
				byRole[meth.Name] = meth.Role != ""
			}
		}
		if a, err := r.latest(ctx, w); err != nil {
			return nil, "", -1, err
		} else if a != nil {
			wr.ApprovedDigest, wr.Approver, wr.Ticket, wr.Development = a.GetDigest(), a.GetApprover(), a.GetTicket(), a.GetDevelopment()
			wr.ApprovalAgeDays = float64(rev.Until.Sub(a.GetApprovedAt().AsTime())) / float64(24*time.Hour)
		}
		used := map[string]bool{}
		for _, o := range byServer[w] {
			callers, ok := declared[o.Method]
			switch {
			case m == nil:
				o.Deviation = "no manifest declares this workload"
			case !ok:
				o.Deviation = "method not in the manifest"
			case o.Code == codes.Unauthenticated.String():
				o.Deviation = "unauthenticated caller refused"
			case o.Code == codes.PermissionDenied.String():
				o.Deviation = "caller refused: not allowed by the manifest"
			case !slices.Contains(callers, o.Caller) && !byRole[o.Method]:
				o.Deviation = "caller not allowed by the manifest"
			}
			if o.Deviation != "" {
				rev.Deviations++
			}
			if o.Code == codes.OK.String() || o.Deviation == "" {
				used[o.Method] = true
			}
			wr.Observations = append(wr.Observations, o)
		}
		for name := range declared {
			if !used[name] {
				wr.UnusedMethods = append(wr.UnusedMethods, name)
			}
		}
		sort.Strings(wr.UnusedMethods)
		rev.Workloads = append(rev.Workloads, wr)
	}
	md := rev.Markdown()
	idx := int64(-1)
	if reviewer != "" {
		data, err := json.Marshal(rev)
		if err != nil {
			return nil, "", -1, fmt.Errorf("encode review: %w", err)
		}
		outcome := evidence.OutcomePass
		if rev.Deviations > 0 {
			outcome = evidence.OutcomeFail
		}
		idx, err = r.rec.Append(ctx, evidence.Entry{Kind: evidence.KindControlResult, Control: "scope-review", Criteria: Criteria,
			Subject: reviewer, Outcome: outcome, Summary: fmt.Sprintf("scope review by %s: %d deviations across %d workloads", reviewer, rev.Deviations, len(rev.Workloads)), Data: data})
		if err != nil {
			return nil, "", -1, err
		}
		if _, err := r.db.ExecContext(ctx, `INSERT INTO scope_reviews (reviewer, reviewed_ns, evidence_index) VALUES (?, ?, ?)`, reviewer, rev.Until.UnixNano(), idx); err != nil {
			return nil, "", -1, fmt.Errorf("record review: %w", err)
		}
	}
	return rev, md, idx, nil
}

// Markdown renders the review for people.
func (rev *Review) Markdown() string {
	var b strings.Builder
	since := "the start of the log"
	if !rev.Since.IsZero() {
		since = rev.Since.Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "# Scope review (SOC 2 CC5.2)\n\nPeriod: %s to %s. Deviations: %d.\n", since, rev.Until.Format(time.RFC3339), rev.Deviations)
	for _, w := range rev.Workloads {
		fmt.Fprintf(&b, "\n## %s\n\n", w.Workload)
		fmt.Fprintf(&b, "- declared manifest: %s (credential %s; egress %s)\n", orNone(w.DeclaredDigest), orNone(w.DeclaredCredKind), orNone(strings.Join(w.DeclaredEgress, ", ")))
		switch {
		case w.ApprovedDigest == "" && approvable(w.Workload):
			b.WriteString("- approval: NONE\n")
		case w.ApprovedDigest != "":
			dev := ""
			if w.Development {
				dev = " **DEVELOPMENT auto-approval, not a human review**"
			}
			fmt.Fprintf(&b, "- approval: %s by %s, ticket %s, %.1f days old%s\n", w.ApprovedDigest, w.Approver, w.Ticket, w.ApprovalAgeDays, dev)
			if w.DeclaredDigest != "" && w.ApprovedDigest != w.DeclaredDigest {
				b.WriteString("- the approved digest differs from the bundled manifest\n")
			}
		}
		if len(w.Observations) == 0 {
			b.WriteString("- observed: no calls\n")
		} else {
			b.WriteString("\n| method | caller | outcome | calls | last | deviation |\n|---|---|---|---|---|---|\n")
			for _, o := range w.Observations {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s |\n", o.Method, orNone(o.Caller), o.Code, o.Count, o.Last.Format(time.RFC3339), orNone(o.Deviation))
			}
		}
		if len(w.UnusedMethods) > 0 {
			fmt.Fprintf(&b, "\nDeclared but not called in the period: %s\n", strings.Join(w.UnusedMethods, ", "))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
