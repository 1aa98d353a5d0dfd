// Package review takes the access review's decisions back (issue 15): each
// audit opens a campaign over its access review items (the report's review
// subjects, each keyed by a fingerprint of its subject) with a due date; a
// person named by a verified OpenID Connect ID token decides each item
// (Confirmed, Requires justification, Revoke) one at a time or by
// importing the CSV the report produced, and nobody decides an item about
// their own access. Each Revoke is tracked: the next audit of the cluster
// marks it verified (the grant is gone) or still present, raised in
// severity for every audit it survives. Decisions, verifications,
// still-present grants and overdue campaigns are entries of the evidence
// log (SOC 2 CC6.2, CC6.3, CC5.2, CC4.1) naming the person.
package review

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/evidence"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/storage"
)

// Control names access review entries in the evidence log.
const Control = "access-review"

// The SOC 2 criteria of each kind of entry.
var (
	// DecisionCriteria: a reviewer's decision on an item (access reviewed
	// by a person, a control activity carried out).
	DecisionCriteria = []string{"CC6.3", "CC5.2"}
	// RevokeCriteria: a Revoke decision (access to be removed).
	RevokeCriteria = []string{"CC6.2", "CC6.3", "CC5.2"}
	// RemovalCriteria: an audit verified a removal or found the grant
	// still present.
	RemovalCriteria = []string{"CC6.2"}
	// OverdueCriteria: a campaign past its due date with items undecided
	// (monitoring of the control).
	OverdueCriteria = []string{"CC4.1"}
)

// DefaultDue is how long a campaign runs before undecided items are
// overdue.
const DefaultDue = 14 * 24 * time.Hour

// Recorder appends to the evidence log (evidence.Log). AppendAllWith runs
// write in one transaction of the registry's database (the log lives in
// the same orchestrator database) and appends the entries it returns in
// that transaction: an audit's revocation checks, overdue campaigns and
// tracked revocations are stored with their evidence, at one commit, or
// not at all.
type Recorder interface {
	Append(ctx context.Context, e evidence.Entry) (int64, error)
	AppendAllWith(ctx context.Context, write func(ctx context.Context, tx *storage.Tx) ([]evidence.Entry, error)) ([]int64, error)
}

// Verifier verifies a person's ID token (people.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*secureauditv1.Decider, error)
}

// Audits is where audits and their reports come from (store.Store).
type Audits interface {
	GetAudit(ctx context.Context, id string) (*secureauditv1.Audit, error)
	ListAudits(ctx context.Context, limit int, pageToken string) ([]*secureauditv1.Audit, string, error)
	ReportInput(ctx context.Context, auditID string) (*secureauditv1.Report, error)
	Report(ctx context.Context, auditID string, format secureauditv1.ReportFormat) ([]byte, error)
}

// Errors a decision is refused with; the server maps them.
var (
	ErrNoIssuer = errors.New("this orchestrator has no OpenID Connect issuer configured (-oidc-issuer and -oidc-audience): review decisions need verified people")
	ErrNoAudit  = errors.New("no audit has succeeded yet: review decisions are about an audit's access review")
)

// NotFoundError is a decision naming nothing there.
type NotFoundError struct{ What string }

func (e *NotFoundError) Error() string { return e.What }

// InvalidError is a decision or sheet that cannot be recorded as given.
type InvalidError struct{ What string }

func (e *InvalidError) Error() string { return e.What }

// OwnAccessError is a decision refused by separation of duties: the
// decider is the item's subject, or a member of it.
type OwnAccessError struct{ Person, Item, Why string }

func (e *OwnAccessError) Error() string {
	return fmt.Sprintf("separation of duties: %s cannot decide review item %s about their own access (%s); another person must", e.Person, e.Item, e.Why)
}

// Registry keeps the campaigns, decisions and revocations.
type Registry struct {
	db     *storage.DB
	rec    Recorder
	audits Audits
	people Verifier
	log    *slog.Logger
	now    func() time.Time
	due    time.Duration
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// DueIn sets how long a campaign runs before its undecided items are
// overdue.
func DueIn(d time.Duration) Option { return func(r *Registry) { r.due = d } }

// New returns a registry; v may be nil (no issuer: decisions are refused).
func New(db *storage.DB, rec Recorder, audits Audits, v Verifier, log *slog.Logger, opts ...Option) *Registry {
	r := &Registry{db: db, rec: rec, audits: audits, people: v, log: log, now: time.Now, due: DefaultDue}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (r *Registry) person(ctx context.Context, idToken string) (*secureauditv1.Decider, error) {
	if r.people == nil {
		return nil, ErrNoIssuer
	}
	if p, ok := r.people.(*people.Verifier); ok && p == nil {
		return nil, ErrNoIssuer
	}
	return r.people.Verify(ctx, idToken)
}

// Key is a review item's key: a fingerprint of its subject, the same in
// every audit.
func Key(s *secureauditv1.SubjectRef) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("review-item\x00%d\x00%s\x00%s", s.GetKind(), s.GetNamespace(), s.GetName())))
	return hex.EncodeToString(sum[:8])
}

// SubjectString names a subject: KIND:NAME.
func SubjectString(s *secureauditv1.SubjectRef) string {
	kind := map[secureauditv1.SubjectKind]string{secureauditv1.SubjectKind_SUBJECT_KIND_USER: "User", secureauditv1.SubjectKind_SUBJECT_KIND_GROUP: "Group", secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT: "ServiceAccount"}[s.GetKind()]
	if s.GetNamespace() != "" {
		return kind + ":" + s.GetNamespace() + "/" + s.GetName()
	}
	return kind + ":" + s.GetName()
}

// DecisionText is a decision as the report's sign-off names it.
func DecisionText(d secureauditv1.ReviewDecisionKind) string {
	switch d {
	case secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED:
		return "Confirmed"
	case secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION:
		return "Requires justification"
	case secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE:
		return "Revoke"
	}
	return "none"
}

// ParseDecision reads a decision as the report's sign-off names it (any
// case).
func ParseDecision(s string) (secureauditv1.ReviewDecisionKind, bool) {
	for _, d := range []secureauditv1.ReviewDecisionKind{secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_CONFIRMED,
		secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION, secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE} {
		if strings.EqualFold(strings.TrimSpace(s), DecisionText(d)) {
			return d, true
		}
	}
	return 0, false
}

func bindingString(b *secureauditv1.BindingRef) string {
	if b.GetNamespace() != "" {
		return b.GetNamespace() + "/" + b.GetName()
	}
	return b.GetName()
}

func bindingKey(b *secureauditv1.BindingRef) string {
	return fmt.Sprintf("%d/%s/%s", b.GetKind(), b.GetNamespace(), b.GetName())
}

func personJSON(d *secureauditv1.Decider) map[string]string {
	if d == nil {
		return nil
	}
	return map[string]string{"issuer": d.GetIssuer(), "sub": d.GetSubject(), "oid": d.GetObjectId(), "name": d.GetName(), "email": d.GetEmail()}
}

// campaign is a stored campaign.
type campaign struct {
	auditID, cluster string
	opened, due      time.Time
	items            []*secureauditv1.ReviewItem
}

// Key sets the key of each of the report's access review items. The
// runner calls it before the report goes to the report-agent (the keys are
// the CSV's), Open again.
func (r *Registry) Key(report *secureauditv1.Report) {
	for _, s := range report.GetAccessReview() {
		s.Key = Key(s.GetSubject())
	}
}

// Open keys the report's access review items, checks the cluster's
// tracked revocations against them (verified or still present), records
// the overdue campaigns of the cluster, tracks the grants of the main
// findings named in revoke (the findings whose report action is Revoke, as
// the report-agent, which decides every action, named them), opens the
// audit's campaign and sets report.review. The runner calls it once the
// report-agent has named them, before the report is rendered.
func (r *Registry) Open(ctx context.Context, auditID, cluster string, report *secureauditv1.Report, main []*secureauditv1.Finding, revoke []string) error {
	// The names are resolved before anything is recorded: a name that is
	// not one of main fails the audit with nothing checked or tracked.
	revoked, err := resolve(main, revoke)
	if err != nil {
		return err
	}
	now := r.now().UTC()
	r.Key(report)
	var items []*secureauditv1.ReviewItem
	for _, s := range report.GetAccessReview() {
		items = append(items, &secureauditv1.ReviewItem{Key: s.GetKey(), Subject: s.GetSubject()})
	}
	// An incomplete snapshot (objects left out as too large), or an access
	// review cut at its bound (a subject left off it is not a subject
	// without access), proves no removal: its revocations wait for a
	// complete one.
	var (
		checked []*secureauditv1.Revocation
		changes []revocationCheck
	)
	if !report.GetSnapshotPartial() && !report.GetAccessReviewTruncated() {
		if checked, changes, err = r.check(ctx, auditID, cluster, report.GetAccessReview()); err != nil {
			return err
		}
	}
	overdue, err := r.overdue(ctx, cluster, now)
	if err != nil {
		return err
	}
	tracks, err := r.track(ctx, auditID, cluster, revoked, changes)
	if err != nil {
		return err
	}
	raw, err := encodeItems(items)
	if err != nil {
		return err
	}
	// Everything the audit records about the review, in one transaction
	// with its evidence entries (the checks', then the overdue campaigns'):
	// a crash leaves all of it or none, and a rerun of the audit checks
	// again what it did not record.
	write := func(ctx context.Context, tx *storage.Tx) ([]evidence.Entry, error) {
		var entries []evidence.Entry
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, `UPDATE revocations SET state = ?, revocation = ? WHERE id = ?`, int(c.v.GetState()), c.raw, c.v.GetId()); err != nil {
				return nil, fmt.Errorf("update revocation %d: %w", c.v.GetId(), err)
			}
			entries = append(entries, c.entry)
		}
		for _, o := range overdue {
			res, err := tx.ExecContext(ctx, `UPDATE review_campaigns SET overdue_recorded = 1 WHERE audit_id = ? AND overdue_recorded = 0`, o.auditID)
			if err != nil {
				return nil, fmt.Errorf("record overdue campaign %s: %w", o.auditID, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // recorded by another replica
			}
			entries = append(entries, o.entry)
		}
		for _, t := range tracks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (cluster, audit_id, source, state, revocation) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (audit_id, source) DO NOTHING`, cluster, auditID, t.source, int(secureauditv1.RevocationState_REVOCATION_STATE_PENDING), t.raw); err != nil {
				return nil, fmt.Errorf("track the revocation of finding %s: %w", t.finding, err)
			}
		}
		// An audit run again (its replica stopped) keeps its campaign's
		// dates and takes the items it found this time.
		if _, err := tx.ExecContext(ctx, `INSERT INTO review_campaigns (audit_id, cluster, opened_ns, due_ns, items) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (audit_id) DO UPDATE SET items = excluded.items`,
			auditID, cluster, now.UnixNano(), now.Add(r.due).UnixNano(), raw); err != nil {
			return nil, fmt.Errorf("open review campaign of audit %s: %w", auditID, err)
		}
		return entries, nil
	}
	if _, err := r.rec.AppendAllWith(ctx, write); err != nil {
		return fmt.Errorf("record the access review of audit %s: %w", auditID, err)
	}
	state := &secureauditv1.ReviewState{Revocations: checked}
	cs, err := r.campaigns(ctx, cluster, 5)
	if err != nil {
		return err
	}
	for _, c := range cs {
		st, err := r.state(ctx, c, now)
		if err != nil {
			return err
		}
		st.ItemStates = nil // the report lists counts; review status lists items
		state.Campaigns = append(state.Campaigns, st)
	}
	report.Review = state
	return nil
}

func encodeItems(items []*secureauditv1.ReviewItem) (string, error) {
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		b, err := protojson.Marshal(it)
		if err != nil {
			return "", fmt.Errorf("encode review item: %w", err)
		}
		out = append(out, b)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode review items: %w", err)
	}
	return string(b), nil
}

func decodeItems(raw string) ([]*secureauditv1.ReviewItem, error) {
	var in []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return nil, fmt.Errorf("decode review items: %w", err)
	}
	out := make([]*secureauditv1.ReviewItem, 0, len(in))
	for _, b := range in {
		it := &secureauditv1.ReviewItem{}
		if err := protojson.Unmarshal(b, it); err != nil {
			return nil, fmt.Errorf("decode review item: %w", err)
		}
		out = append(out, it)
	}
	return out, nil
}

const campaignColumns = `audit_id, cluster, opened_ns, due_ns, items`

func scanCampaign(sc interface{ Scan(...any) error }) (*campaign, error) {
	var (
		c              campaign
		opened, due    int64
		raw            string
		auditID, clust string
	)
	if err := sc.Scan(&auditID, &clust, &opened, &due, &raw); err != nil {
		return nil, err
	}
	items, err := decodeItems(raw)
	if err != nil {
		return nil, fmt.Errorf("campaign of audit %s: %w", auditID, err)
	}
	c.auditID, c.cluster, c.opened, c.due, c.items = auditID, clust, time.Unix(0, opened).UTC(), time.Unix(0, due).UTC(), items
	return &c, nil
}

// campaigns returns the newest campaigns of a cluster whose audit
// succeeded (or is the one running), newest first.
func (r *Registry) campaigns(ctx context.Context, cluster string, limit int) ([]*campaign, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+campaignColumns+` FROM review_campaigns WHERE cluster = ? ORDER BY opened_ns DESC`, cluster)
	if err != nil {
		return nil, fmt.Errorf("list review campaigns: %w", err)
	}
	var all []*campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list review campaigns: %w", err)
		}
		all = append(all, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list review campaigns: %w", err)
	}
	var out []*campaign
	for i, c := range all {
		if i > 0 && !r.succeeded(ctx, c.auditID) {
			continue
		}
		out = append(out, c)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (r *Registry) succeeded(ctx context.Context, auditID string) bool {
	a, err := r.audits.GetAudit(ctx, auditID)
	return err == nil && a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
}

func (r *Registry) campaign(ctx context.Context, auditID string) (*campaign, error) {
	c, err := scanCampaign(r.db.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM review_campaigns WHERE audit_id = ?`, auditID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &NotFoundError{What: fmt.Sprintf("audit %s has no review campaign (it ran before review campaigns were kept, or has not reached its report)", auditID)}
	}
	if err != nil {
		return nil, fmt.Errorf("read review campaign of audit %s: %w", auditID, err)
	}
	return c, nil
}

// decisions returns the decisions of a campaign by item key.
func (r *Registry) decisions(ctx context.Context, auditID string) (map[string]*secureauditv1.ReviewDecision, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT item_key, decision FROM review_decisions WHERE audit_id = ?`, auditID)
	if err != nil {
		return nil, fmt.Errorf("list review decisions: %w", err)
	}
	defer rows.Close()
	out := map[string]*secureauditv1.ReviewDecision{}
	for rows.Next() {
		var key, raw string
		if err := rows.Scan(&key, &raw); err != nil {
			return nil, fmt.Errorf("list review decisions: %w", err)
		}
		d := &secureauditv1.ReviewDecision{}
		if err := protojson.Unmarshal([]byte(raw), d); err != nil {
			return nil, fmt.Errorf("decode review decision of item %s: %w", key, err)
		}
		out[key] = d
	}
	return out, rows.Err()
}

// state is a campaign's state: its items with their decisions, counts, and
// the state of its revocations.
func (r *Registry) state(ctx context.Context, c *campaign, now time.Time) (*secureauditv1.ReviewCampaign, error) {
	ds, err := r.decisions(ctx, c.auditID)
	if err != nil {
		return nil, err
	}
	out := &secureauditv1.ReviewCampaign{AuditId: c.auditID, Cluster: c.cluster, OpenedAt: timestamppb.New(c.opened), DueAt: timestamppb.New(c.due), Items: uint32(len(c.items))}
	for _, it := range c.items {
		st := &secureauditv1.ReviewItem{Key: it.GetKey(), Subject: it.GetSubject(), Decision: ds[it.GetKey()]}
		if st.Decision != nil {
			out.Decided++
			if st.Decision.GetDecision() == secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE {
				out.Revoked++
			}
		} else {
			out.Pending++
		}
		out.ItemStates = append(out.ItemStates, st)
	}
	out.Overdue = out.GetPending() > 0 && now.After(c.due)
	revs, err := r.revocations(ctx, `WHERE audit_id = ?`, c.auditID)
	if err != nil {
		return nil, err
	}
	for _, v := range revs {
		if v.GetFindingId() != "" {
			out.RevokeActions++
		}
		switch v.GetState() {
		case secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED:
			out.Verified++
		case secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT:
			out.StillPresent++
		}
	}
	return out, nil
}

// overdueCampaign is a campaign past its due date with items undecided,
// and its evidence entry.
type overdueCampaign struct {
	auditID string
	entry   evidence.Entry
}

// overdue returns each campaign of the cluster that passed its due date
// with items undecided and is not recorded yet; Open records each once
// (overdue_recorded, set in the transaction that appends its entry: of
// two replicas noticing it, one records it).
func (r *Registry) overdue(ctx context.Context, cluster string, now time.Time) ([]overdueCampaign, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+campaignColumns+` FROM review_campaigns WHERE cluster = ? AND due_ns < ? AND overdue_recorded = 0`, cluster, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("list overdue campaigns: %w", err)
	}
	var cs []*campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list overdue campaigns: %w", err)
		}
		cs = append(cs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list overdue campaigns: %w", err)
	}
	var out []overdueCampaign
	for _, c := range cs {
		if !r.succeeded(ctx, c.auditID) {
			continue
		}
		st, err := r.state(ctx, c, now)
		if err != nil {
			return nil, err
		}
		if st.GetOverdue() {
			out = append(out, overdueCampaign{auditID: c.auditID, entry: overdueEntry(st, now)})
		}
	}
	return out, nil
}

func overdueEntry(c *secureauditv1.ReviewCampaign, now time.Time) evidence.Entry {
	var pending []string
	for _, it := range c.GetItemStates() {
		if it.GetDecision() == nil {
			pending = append(pending, it.GetKey()+" "+SubjectString(it.GetSubject()))
		}
	}
	data, _ := json.Marshal(map[string]any{"audit_id": c.GetAuditId(), "cluster": c.GetCluster(), "due_at": c.GetDueAt().AsTime().Format(time.RFC3339),
		"noticed_at": now.Format(time.RFC3339), "items": c.GetItems(), "decided": c.GetDecided(), "pending_items": pending})
	return evidence.Entry{Kind: evidence.KindAlert, Control: Control, Criteria: OverdueCriteria, Subject: "review campaign " + c.GetAuditId(), Outcome: evidence.OutcomeFail,
		Summary: fmt.Sprintf("the access review of audit %s on %s was due %s and %d of its %d items are undecided: %s", c.GetAuditId(), c.GetCluster(),
			c.GetDueAt().AsTime().Format(time.DateOnly), c.GetPending(), c.GetItems(), strings.Join(pending, ", ")), Data: data}
}

// latest returns the newest succeeded audit.
func (r *Registry) latest(ctx context.Context) (*secureauditv1.Audit, error) {
	tok := ""
	for range 20 {
		page, next, err := r.audits.ListAudits(ctx, 50, tok)
		if err != nil {
			return nil, fmt.Errorf("list audits: %w", err)
		}
		for _, a := range page {
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				return a, nil
			}
		}
		if next == "" {
			break
		}
		tok = next
	}
	return nil, ErrNoAudit
}

// audit returns the audit a request names, or the latest succeeded one.
func (r *Registry) audit(ctx context.Context, id string) (*secureauditv1.Audit, error) {
	if id == "" {
		return r.latest(ctx)
	}
	a, err := r.audits.GetAudit(ctx, id)
	if err != nil || a == nil {
		return nil, &NotFoundError{What: fmt.Sprintf("no audit %s", id)}
	}
	if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
		return nil, &InvalidError{What: fmt.Sprintf("audit %s is %s: review the access review of a succeeded audit", id, strings.ToLower(strings.TrimPrefix(a.GetState().String(), "AUDIT_STATE_")))}
	}
	return a, nil
}

// ownAccess refuses a decider who is the item's subject (by object ID,
// e-mail address or name) or, for a group, one of its members as the
// directory listed them.
func ownAccess(by *secureauditv1.Decider, s *secureauditv1.ReviewSubject) error {
	ids := map[string]bool{}
	for _, v := range []string{by.GetObjectId(), by.GetEmail(), by.GetName()} {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			ids[v] = true
		}
	}
	match := func(vals ...string) string {
		for _, v := range vals {
			if v = strings.ToLower(strings.TrimSpace(v)); v != "" && ids[v] {
				return v
			}
		}
		return ""
	}
	item := s.GetKey() + " (" + SubjectString(s.GetSubject()) + ")"
	if s.GetSubject().GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_USER {
		if m := match(s.GetSubject().GetName(), s.GetSubject().GetDisplayName(), s.GetPerson().GetUserPrincipalName(), s.GetPerson().GetDisplayName()); m != "" {
			return &OwnAccessError{Person: people.Display(by), Item: item, Why: "the subject is " + m}
		}
	}
	for _, p := range s.GetMembers() {
		if m := match(p.GetUserPrincipalName(), p.GetDisplayName()); m != "" {
			return &OwnAccessError{Person: people.Display(by), Item: item, Why: "a member of the group is " + m}
		}
	}
	return nil
}

// pending is a decision validated and ready to record.
type pending struct {
	decision   *secureauditv1.ReviewDecision
	revocation *secureauditv1.Revocation
	entry      evidence.Entry
	cluster    string
	// overrules are the open revocations of the report's Revoke action on
	// the subject's grants that a Confirmed or Requires justification ends.
	overrules []*secureauditv1.Revocation
}

// loaded is what deciding on an audit's campaign needs: the audit, its
// review subjects and campaign items by key, and the decisions made.
type loaded struct {
	audit    *secureauditv1.Audit
	subjects map[string]*secureauditv1.ReviewSubject
	items    map[string]bool
	decided  map[string]*secureauditv1.ReviewDecision
}

// prepare validates one decision on the item key of the loaded campaign
// and builds what recording it writes.
func (r *Registry) prepare(l *loaded, key string, kind secureauditv1.ReviewDecisionKind, justification string, by *secureauditv1.Decider, now time.Time) (*pending, error) {
	a, decided := l.audit, l.decided
	subject := l.subjects[key]
	if subject == nil || !l.items[key] {
		return nil, &NotFoundError{What: fmt.Sprintf("audit %s's access review has no item %s (secureaudit review status lists them)", a.GetId(), key)}
	}
	if d := decided[key]; d != nil {
		return nil, &InvalidError{What: fmt.Sprintf("item %s (%s) was decided already: %s by %s", key, SubjectString(subject.GetSubject()), DecisionText(d.GetDecision()), people.Display(d.GetDecidedBy()))}
	}
	if err := ownAccess(by, subject); err != nil {
		return nil, err
	}
	if kind == secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REQUIRES_JUSTIFICATION && strings.TrimSpace(justification) == "" {
		return nil, &InvalidError{What: fmt.Sprintf("item %s (%s): Requires justification needs the question to its owner (--justification, or the comment column)", key, SubjectString(subject.GetSubject()))}
	}
	d := &secureauditv1.ReviewDecision{AuditId: a.GetId(), ItemKey: key, Subject: subject.GetSubject(), Decision: kind, Justification: justification, DecidedBy: by, DecidedAt: timestamppb.New(now)}
	p := &pending{decision: d, cluster: a.GetCluster()}
	var bindings []string
	criteria := DecisionCriteria
	if kind == secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE {
		criteria = RevokeCriteria
		v := &secureauditv1.Revocation{Cluster: a.GetCluster(), AuditId: a.GetId(), ItemKey: key, Subject: subject.GetSubject(),
			State: secureauditv1.RevocationState_REVOCATION_STATE_PENDING, DecidedBy: by}
		seen := map[string]bool{}
		for _, g := range subject.GetGrants() {
			if k := bindingKey(g.GetBinding()); !seen[k] {
				seen[k] = true
				v.Bindings = append(v.Bindings, g.GetBinding())
				bindings = append(bindings, bindingString(g.GetBinding()))
			}
		}
		p.revocation = v
	}
	data, err := json.Marshal(map[string]any{"audit_id": a.GetId(), "cluster": a.GetCluster(), "item_key": key, "subject": SubjectString(subject.GetSubject()),
		"decision": DecisionText(kind), "justification": justification, "bindings": bindings, "decided_by": personJSON(by), "decided_at": now.Format(time.RFC3339)})
	if err != nil {
		return nil, fmt.Errorf("encode decision: %w", err)
	}
	summary := fmt.Sprintf("%s decided %s for review item %s (%s) of audit %s on %s", people.Display(by), DecisionText(kind), key, SubjectString(subject.GetSubject()), a.GetId(), a.GetCluster())
	if len(bindings) > 0 {
		summary += "; to remove: " + strings.Join(bindings, ", ")
	}
	if justification != "" {
		summary += ": " + justification
	}
	p.entry = evidence.Entry{Kind: evidence.KindApproval, Control: Control, Criteria: criteria, Subject: SubjectString(subject.GetSubject()), Outcome: evidence.OutcomeInfo, Summary: summary, Data: data}
	return p, nil
}

// record appends each decision to the evidence log and stores them all in
// one transaction: all or, on an error, none in the store.
func (r *Registry) record(ctx context.Context, ps []*pending) error {
	// A Confirmed or Requires justification overrules the revocations the
	// report's Revoke action asked for on the subject's grants.
	for _, p := range ps {
		if p.decision.GetDecision() == secureauditv1.ReviewDecisionKind_REVIEW_DECISION_KIND_REVOKE {
			continue
		}
		open, err := r.revocations(ctx, `WHERE cluster = ? AND source LIKE ? AND (state = ? OR state = ?)`, p.cluster, "finding:"+p.decision.GetItemKey()+" %",
			int(secureauditv1.RevocationState_REVOCATION_STATE_PENDING), int(secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT))
		if err != nil {
			return err
		}
		if len(open) == 0 {
			continue
		}
		var ids []int64
		var bs []string
		for _, v := range open {
			ids = append(ids, v.GetId())
			for _, b := range v.GetBindings() {
				bs = append(bs, bindingString(b))
			}
		}
		p.overrules = open
		p.entry.Summary += fmt.Sprintf("; overrules the report's Revoke action on %s (revocations %v)", strings.Join(bs, ", "), ids)
		var data map[string]any
		if err := json.Unmarshal(p.entry.Data, &data); err == nil {
			data["overrules_revocations"] = ids
			if b, err := json.Marshal(data); err == nil {
				p.entry.Data = b
			}
		}
	}
	for _, p := range ps {
		idx, err := r.rec.Append(ctx, p.entry)
		if err != nil {
			return err
		}
		p.decision.EvidenceIndex = idx
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record review decisions: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for _, p := range ps {
		raw, err := protojson.Marshal(p.decision)
		if err != nil {
			return fmt.Errorf("encode decision: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO review_decisions (audit_id, item_key, decision, decided_ns) VALUES (?, ?, ?, ?)`,
			p.decision.GetAuditId(), p.decision.GetItemKey(), string(raw), p.decision.GetDecidedAt().AsTime().UnixNano()); err != nil {
			return &InvalidError{What: fmt.Sprintf("item %s was decided meanwhile by someone else; nothing was recorded (%v)", p.decision.GetItemKey(), err)}
		}
		for _, v := range p.overrules {
			v.State, v.DecidedBy = secureauditv1.RevocationState_REVOCATION_STATE_OVERRULED, p.decision.GetDecidedBy()
			raw, err := protojson.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode revocation: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE revocations SET state = ?, revocation = ? WHERE id = ?`, int(v.GetState()), string(raw), v.GetId()); err != nil {
				return fmt.Errorf("overrule revocation %d: %w", v.GetId(), err)
			}
		}
		if v := p.revocation; v != nil {
			raw, err := protojson.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode revocation: %w", err)
			}
			if err := tx.QueryRowContext(ctx, `INSERT INTO revocations (cluster, audit_id, source, state, revocation) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				v.GetCluster(), v.GetAuditId(), "item:"+v.GetItemKey(), int(v.GetState()), string(raw)).Scan(&v.Id); err != nil {
				return fmt.Errorf("track revocation of item %s: %w", v.GetItemKey(), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record review decisions: %w", err)
	}
	return nil
}

// Decide records the decision of the person idToken names on one item of
// an audit's campaign (the latest succeeded audit's when auditID is "").
func (r *Registry) Decide(ctx context.Context, req *secureauditv1.DecideReviewRequest) (*secureauditv1.ReviewDecision, *secureauditv1.Revocation, error) {
	by, err := r.person(ctx, req.GetIdToken())
	if err != nil {
		return nil, nil, err
	}
	l, err := r.load(ctx, req.GetAuditId())
	if err != nil {
		return nil, nil, err
	}
	p, err := r.prepare(l, req.GetItemKey(), req.GetDecision(), req.GetJustification(), by, r.now().UTC())
	if err != nil {
		return nil, nil, err
	}
	if err := r.record(ctx, []*pending{p}); err != nil {
		return nil, nil, err
	}
	return p.decision, p.revocation, nil
}

// load reads what deciding on an audit's campaign needs.
func (r *Registry) load(ctx context.Context, auditID string) (*loaded, error) {
	a, err := r.audit(ctx, auditID)
	if err != nil {
		return nil, err
	}
	c, err := r.campaign(ctx, a.GetId())
	if err != nil {
		return nil, err
	}
	in, err := r.audits.ReportInput(ctx, a.GetId())
	if err != nil {
		return nil, fmt.Errorf("report of audit %s: %w", a.GetId(), err)
	}
	l := &loaded{audit: a, subjects: map[string]*secureauditv1.ReviewSubject{}, items: map[string]bool{}}
	if l.decided, err = r.decisions(ctx, a.GetId()); err != nil {
		return nil, err
	}
	for _, s := range in.GetAccessReview() {
		if s.GetKey() == "" {
			s.Key = Key(s.GetSubject())
		}
		l.subjects[s.GetKey()] = s
	}
	for _, it := range c.items {
		l.items[it.GetKey()] = true
	}
	return l, nil
}

// Status returns an audit's campaign (the latest succeeded audit's when
// auditID is ""), the revocations of its cluster and its overdue
// campaigns.
func (r *Registry) Status(ctx context.Context, auditID string) (*secureauditv1.GetReviewStatusResponse, error) {
	a, err := r.audit(ctx, auditID)
	if err != nil {
		return nil, err
	}
	c, err := r.campaign(ctx, a.GetId())
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	out := &secureauditv1.GetReviewStatusResponse{}
	if out.Campaign, err = r.state(ctx, c, now); err != nil {
		return nil, err
	}
	if out.Revocations, err = r.revocations(ctx, `WHERE cluster = ?`, a.GetCluster()); err != nil {
		return nil, err
	}
	cs, err := r.campaigns(ctx, a.GetCluster(), 100)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		st, err := r.state(ctx, c, now)
		if err != nil {
			return nil, err
		}
		if st.GetOverdue() {
			out.Overdue = append(out.Overdue, st)
		}
	}
	return out, nil
}

// revocations returns the revocations a WHERE clause selects, newest
// first.
func (r *Registry) revocations(ctx context.Context, where string, args ...any) ([]*secureauditv1.Revocation, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, revocation FROM revocations `+where+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list revocations: %w", err)
	}
	defer rows.Close()
	var out []*secureauditv1.Revocation
	for rows.Next() {
		var (
			id  int64
			raw string
		)
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("list revocations: %w", err)
		}
		v := &secureauditv1.Revocation{}
		if err := protojson.Unmarshal([]byte(raw), v); err != nil {
			return nil, fmt.Errorf("decode revocation %d: %w", id, err)
		}
		v.Id = id
		out = append(out, v)
	}
	return out, rows.Err()
}

// revocationCheck is an audit's check of one revocation: its new state,
// encoded, and the evidence entry of the outcome.
type revocationCheck struct {
	v     *secureauditv1.Revocation
	raw   string
	entry evidence.Entry
}

// subjectKey names a subject by its kind, namespace and name: two
// subject references are the same subject when their keys are equal.
func subjectKey(s *secureauditv1.SubjectRef) string {
	return fmt.Sprintf("%d\x00%s\x00%s", s.GetKind(), s.GetNamespace(), s.GetName())
}

// check marks each open revocation of the cluster (decided at another
// audit) verified when none of its bindings grants the subject any more,
// or still present, one severity step higher for each audit it survives;
// each outcome is an evidence entry (CC6.2). It returns the open
// revocations in their new states, and the changes Open records (in the
// order of the revocations' ids), all in one transaction with their
// entries.
func (r *Registry) check(ctx context.Context, auditID, cluster string, review []*secureauditv1.ReviewSubject) ([]*secureauditv1.Revocation, []revocationCheck, error) {
	open, err := r.revocations(ctx, `WHERE cluster = ? AND audit_id <> ? AND state <> ? AND state <> ?`, cluster, auditID,
		int(secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED), int(secureauditv1.RevocationState_REVOCATION_STATE_OVERRULED))
	if err != nil {
		return nil, nil, err
	}
	if len(open) == 0 {
		return nil, nil, nil
	}
	sort.Slice(open, func(i, j int) bool { return open[i].GetId() < open[j].GetId() })
	// The review's subjects by subject, in the review's order: each
	// revocation looks at its own subject's only.
	bySubject := make(map[string][]*secureauditv1.ReviewSubject, len(review))
	for _, s := range review {
		k := subjectKey(s.GetSubject())
		bySubject[k] = append(bySubject[k], s)
	}
	var changes []revocationCheck
	for _, v := range open {
		if v.GetCheckedAuditId() == auditID {
			continue // checked when this audit ran before (its replica stopped)
		}
		wanted := map[string]bool{}
		for _, b := range v.GetBindings() {
			wanted[bindingKey(b)] = true
		}
		v.Remaining = nil
		for _, s := range bySubject[subjectKey(v.GetSubject())] {
			for _, g := range s.GetGrants() {
				if wanted[bindingKey(g.GetBinding())] {
					v.Remaining = append(v.Remaining, g.GetBinding())
					wanted[bindingKey(g.GetBinding())] = false
				}
			}
		}
		v.CheckedAuditId = auditID
		entry := evidence.Entry{Kind: evidence.KindControlResult, Control: Control, Criteria: RemovalCriteria, Subject: SubjectString(v.GetSubject())}
		var gone []string
		for _, b := range v.GetBindings() {
			gone = append(gone, bindingString(b))
		}
		if len(v.GetRemaining()) == 0 {
			v.State, v.Severity = secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED, secureauditv1.Severity_SEVERITY_UNSPECIFIED
			entry.Outcome = evidence.OutcomePass
			entry.Summary = fmt.Sprintf("audit %s verified the revocation of %s's access through %s on %s (revocation %d, %s at audit %s)",
				auditID, SubjectString(v.GetSubject()), strings.Join(gone, ", "), cluster, v.GetId(), origin(v), v.GetAuditId())
		} else {
			v.State = secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT
			v.AuditsSurvived++
			v.Severity = secureauditv1.Severity_SEVERITY_HIGH
			if v.GetAuditsSurvived() > 1 {
				v.Severity = secureauditv1.Severity_SEVERITY_CRITICAL
			}
			var left []string
			for _, b := range v.GetRemaining() {
				left = append(left, bindingString(b))
			}
			entry.Outcome = evidence.OutcomeFail
			entry.Summary = fmt.Sprintf("audit %s found %s's access through %s still present on %s, %d audit(s) after its revocation (%s at audit %s; revocation %d, now %s)",
				auditID, SubjectString(v.GetSubject()), strings.Join(left, ", "), cluster, v.GetAuditsSurvived(), origin(v), v.GetAuditId(), v.GetId(),
				strings.ToLower(strings.TrimPrefix(v.GetSeverity().String(), "SEVERITY_")))
		}
		data, err := json.Marshal(map[string]any{"revocation_id": v.GetId(), "cluster": cluster, "audit_id": auditID, "decided_at_audit": v.GetAuditId(), "item_key": v.GetItemKey(),
			"subject": SubjectString(v.GetSubject()), "bindings": gone, "state": strings.ToLower(strings.TrimPrefix(v.GetState().String(), "REVOCATION_STATE_")),
			"audits_survived": v.GetAuditsSurvived(), "decided_by": personJSON(v.GetDecidedBy()), "finding_id": v.GetFindingId()})
		if err != nil {
			return nil, nil, fmt.Errorf("encode revocation check: %w", err)
		}
		entry.Data = data
		raw, err := protojson.Marshal(v)
		if err != nil {
			return nil, nil, fmt.Errorf("encode revocation: %w", err)
		}
		changes = append(changes, revocationCheck{v: v, raw: string(raw), entry: entry})
	}
	return open, changes, nil
}

// Tracked reports whether a finding whose report action is Revoke is
// tracked: a user's or group's grant, which the next audit's access review
// (its users and groups) shows present or gone. A ServiceAccount's or a
// role's Revoke is not verified.
func Tracked(f *secureauditv1.Finding) bool {
	kind := f.GetSubject().GetKind()
	return f.GetBinding() != nil && (kind == secureauditv1.SubjectKind_SUBJECT_KIND_USER || kind == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP)
}

// resolve returns the main findings named in revoke, in its order. A name
// that is not one of main is an error: the report and the tracked
// revocations would differ.
func resolve(main []*secureauditv1.Finding, revoke []string) ([]*secureauditv1.Finding, error) {
	if len(revoke) == 0 {
		return nil, nil
	}
	byID := make(map[string]*secureauditv1.Finding, len(main))
	for _, f := range main {
		byID[f.GetId()] = f
	}
	out := make([]*secureauditv1.Finding, 0, len(revoke))
	for _, id := range revoke {
		f := byID[id]
		if f == nil {
			return nil, fmt.Errorf("track the report's Revoke actions: finding %s is not one of the audit's %d main findings", id, len(main))
		}
		out = append(out, f)
	}
	return out, nil
}

// tracked is a revocation Open records for a finding whose report action
// is Revoke.
type tracked struct {
	source, raw, finding string
}

// track returns a revocation to record for each grant (subject and
// binding) of revoked, the audit's main findings whose report action is
// Revoke (the report-agent decides it), unless one of the cluster is open
// for it already (in its state after this audit's checks, changes); the
// next audit checks it like a reviewer's. Only users' and groups' grants
// are tracked (Tracked).
func (r *Registry) track(ctx context.Context, auditID, cluster string, revoked []*secureauditv1.Finding, changes []revocationCheck) ([]tracked, error) {
	if len(revoked) == 0 {
		return nil, nil
	}
	open, err := r.revocations(ctx, `WHERE cluster = ? AND state <> ?`, cluster, int(secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED))
	if err != nil {
		return nil, err
	}
	verified := map[int64]bool{}
	for _, c := range changes {
		verified[c.v.GetId()] = c.v.GetState() == secureauditv1.RevocationState_REVOCATION_STATE_VERIFIED
	}
	held := map[string]bool{}
	grant := func(s *secureauditv1.SubjectRef, b *secureauditv1.BindingRef) string {
		return Key(s) + " " + bindingKey(b)
	}
	for _, v := range open {
		if verified[v.GetId()] {
			continue
		}
		for _, b := range v.GetBindings() {
			held[grant(v.GetSubject(), b)] = true
		}
	}
	var out []tracked
	for _, f := range revoked {
		if !Tracked(f) || held[grant(f.GetSubject(), f.GetBinding())] {
			continue
		}
		g := grant(f.GetSubject(), f.GetBinding())
		held[g] = true
		v := &secureauditv1.Revocation{Cluster: cluster, AuditId: auditID, ItemKey: Key(f.GetSubject()), Subject: f.GetSubject(),
			Bindings: []*secureauditv1.BindingRef{f.GetBinding()}, State: secureauditv1.RevocationState_REVOCATION_STATE_PENDING, FindingId: f.GetId()}
		raw, err := protojson.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode revocation: %w", err)
		}
		out = append(out, tracked{source: "finding:" + g, raw: string(raw), finding: f.GetId()})
	}
	return out, nil
}

// origin says who asked for a revocation: the reviewer who decided it, or
// the report's Revoke action on a finding.
func origin(v *secureauditv1.Revocation) string {
	if v.GetDecidedBy() == nil {
		return "the report's Revoke action on finding " + v.GetFindingId()
	}
	return "decided by " + people.Display(v.GetDecidedBy())
}
