package render

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Action is what the report asks the owner of a finding to do.
type Action string

// The actions, strongest first.
const (
	// ActionRevoke: remove the access unless someone justifies it now.
	ActionRevoke Action = "Revoke"
	// ActionInvestigate: find out who uses the access and why, then narrow it.
	ActionInvestigate Action = "Investigate"
	// ActionReview: confirm the access at the next periodic review.
	ActionReview Action = "Review"
	// ActionReduce: narrow an installed component's grant as spelled out.
	ActionReduce Action = "Reduce scope"
	// ActionAccept: keep an installed component's grant, with a written
	// justification and an owner.
	ActionAccept Action = "Accept with justification"
	// ActionReconfigure: change a setting of the cluster, not anyone's
	// access (AKS local accounts, a public API server...).
	ActionReconfigure Action = "Reconfigure"
	// ActionRemoveCredential: delete an application's client secret or
	// certificate (expired, or beside a federated credential); the
	// identity keeps its access.
	ActionRemoveCredential Action = "Remove the credential"
	// ActionRotateCredential: replace an application's client secret or
	// certificate (ending soon, or a secret past the rotation age), then
	// delete it.
	ActionRotateCredential Action = "Rotate the credential"
)

// actionFor decides a finding's action from its severity and family: a
// cluster setting is reconfigured whatever its severity; critical findings
// and high identity findings (a guest, a disabled or orphaned account
// holding access) are revoked, other high findings investigated, the rest
// reviewed.
func actionFor(f *secureauditv1.Finding) Action {
	if clusterSetting(f) {
		return ActionReconfigure
	}
	switch f.GetSeverity() {
	case secureauditv1.Severity_SEVERITY_CRITICAL:
		return ActionRevoke
	case secureauditv1.Severity_SEVERITY_HIGH:
		if identityFinding(f) {
			return ActionRevoke
		}
		return ActionInvestigate
	}
	return ActionReview
}

// clusterSetting reports whether a finding judges a setting of the cluster
// (an AKS configuration rule without a subject) rather than anyone's access:
// its fix is a configuration change, which "Revoke" or "Review this access"
// would misstate.
func clusterSetting(f *secureauditv1.Finding) bool {
	return f.GetFamily() == secureauditv1.RuleFamily_RULE_FAMILY_AKS && f.GetSubject() == nil
}

// identityFinding reports whether a finding judges an identity (who the
// subject is) rather than a permission (what it may do): the family the
// risk-agent's rule registry gave it, never a guess from the rule ID.
func identityFinding(f *secureauditv1.Finding) bool {
	return f.GetFamily() == secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY
}

// controlTitles indexes the control titles the risk-agent sent, with the
// report (Report.controls) and with each finding (Finding.control_titles):
// the report-agent keeps no table of its own.
type controlTitles map[string]string

// add records titles, keeping the first one seen for an ID.
func (m controlTitles) add(ts []*secureauditv1.ControlTitle) controlTitles {
	for _, t := range ts {
		if _, ok := m[t.GetId()]; !ok && t.GetTitle() != "" {
			m[t.GetId()] = t.GetTitle()
		}
	}
	return m
}

// titlesOf returns the control titles the findings carry.
func titlesOf(fs ...*secureauditv1.Finding) controlTitles {
	m := controlTitles{}
	for _, f := range fs {
		m.add(f.GetControlTitles())
	}
	return m
}

// text is a control ID with its title, when one was sent.
func (m controlTitles) text(id string) string {
	if name, ok := m[id]; ok {
		return id + " (" + name + ")"
	}
	return id
}

// texts is text of each ID.
func (m controlTitles) texts(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = m.text(id)
	}
	return out
}

// controlsOf returns every control a finding bears on: its rule's own, then
// those of the rule hits folded into it (a full wildcard also breaks the
// wildcard, CSR and webhook controls), each once. Compliance status and
// every per-control count are derived from it, never from Controls alone.
func controlsOf(f *secureauditv1.Finding) []string {
	out := append([]string(nil), f.GetControls()...)
	for _, h := range f.GetFolded() {
		for _, c := range h.GetControls() {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// foldedRules lists the rule IDs folded into a finding.
func foldedRules(f *secureauditv1.Finding) []string {
	var out []string
	for _, h := range f.GetFolded() {
		out = append(out, h.GetRuleId())
	}
	return out
}

// reviewItem is one line of the access review: a user or group and the
// access it holds, for a reviewer to confirm, question or revoke.
type reviewItem struct {
	Number      int
	Anchor      string
	Subject     string
	Kind        string
	Grants      []grantView
	Resolved    bool
	Directory   bool
	Description string
	Person      *personView
	Members     []personView
	Owners      []personView
	Guests      int
	Disabled    int
	Note        string
	Findings    []int
	// Builtin marks Kubernetes' own groups (system:masters,
	// system:authenticated...), which no directory holds.
	Builtin bool
	// key is the subject's key (subjectKey).
	key string
	// Key is the item's key in its audit's review campaign (the CSV's key
	// column), "" when the orchestrator set none.
	Key string
}

type grantView struct {
	Binding string
	Role    string
	Scope   string
	Cluster bool
	Missing bool
	// Route spells out how a grant through Azure reaches the cluster.
	Route string
	// Eligible marks an eligible Azure role assignment (PIM): nothing until
	// activated.
	Eligible bool
}

// RoleText is the grant's role as the review shows it: marked eligible
// for an eligible assignment, "(missing)" for a role the snapshot lacks.
func (g grantView) RoleText() string {
	role := g.Role
	if g.Eligible {
		role = "eligible (PIM, activation needed): " + role
	}
	if g.Missing {
		role += " (missing)"
	}
	return role
}

type personView struct {
	Name     string
	Display  string
	Guest    bool
	Disabled bool
	// Eligible marks a group's eligible member (PIM for Groups), or an
	// eligible owner when Owner is set.
	Eligible bool
	// ServicePrincipal marks a member that is an application or managed
	// identity, not a person; Unresolved one the directory snapshot lacks.
	ServicePrincipal bool
	Unresolved       bool
	// Via names the nested groups a transitive member was reached through.
	Via string
	// Owner marks a person listed among a group's owners.
	Owner bool
	// Activated marks a member present through a PIM for Groups
	// activation; Until is its end ("" when Graph gave none).
	Activated bool
	Until     string
}

// Flags describes a person's notable attributes, or "".
func (p personView) Flags() string {
	var f []string
	if p.Guest {
		f = append(f, "guest")
	}
	if p.Disabled {
		f = append(f, "disabled")
	}
	switch {
	case p.Eligible && p.Owner:
		f = append(f, "eligible owner (PIM), not standing")
	case p.Eligible:
		f = append(f, "eligible member (PIM), not standing")
	}
	if p.ServicePrincipal {
		f = append(f, "service principal")
	}
	if p.Unresolved {
		f = append(f, "object ID the directory snapshot does not hold")
	}
	if p.Via != "" {
		f = append(f, "through nested group "+p.Via)
	}
	if p.Activated {
		f = append(f, p.activation())
	}
	return strings.Join(f, ", ")
}

// activation says a member is present through a PIM activation, with its
// end.
func (p personView) activation() string {
	if p.Until == "" {
		return "activated through PIM (no end given), not standing"
	}
	return "activated through PIM until " + p.Until + ", not standing"
}

// OwnerText is an owner as one line, marked when the ownership is PIM
// eligible (the other flags are the members' concern).
func (p personView) OwnerText() string {
	if p.Eligible {
		return p.Text() + " (eligible owner (PIM), not standing)"
	}
	return p.Text()
}

// Text is the person as one line: display name and UPN.
func (p personView) Text() string {
	switch {
	case p.Display != "" && p.Name != "":
		return p.Display + " <" + p.Name + ">"
	case p.Display != "":
		return p.Display
	}
	return p.Name
}

func newPerson(p *secureauditv1.Person) personView {
	v := personView{Name: p.GetUserPrincipalName(), Display: p.GetDisplayName(), Guest: p.GetGuest(), Disabled: p.GetDisabled(), Eligible: p.GetEligible(), Activated: p.GetActivated(),
		ServicePrincipal: p.GetServicePrincipal(), Unresolved: p.GetUnresolved(), Via: p.GetViaGroup()}
	if t := p.GetActivatedUntil(); t != nil {
		v.Until = t.AsTime().UTC().Format("2006-01-02 15:04 UTC")
	}
	return v
}

// newOwner is newPerson for one of a group's owners.
func newOwner(p *secureauditv1.Person) personView {
	v := newPerson(p)
	v.Owner = true
	return v
}

// Reach counts who a group's binding reaches, by kind: "3 people",
// "3 people and 1 service principal", "2 people, 1 service principal and
// 1 unknown member".
func (item reviewItem) Reach() string {
	var people, sps, unknown int
	for _, m := range item.Members {
		switch {
		case m.ServicePrincipal:
			sps++
		case m.Unresolved:
			unknown++
		default:
			people++
		}
	}
	var parts []string
	if people > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", people, plural(people, "person", "people")))
	}
	if sps > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", sps, plural(sps, "service principal", "service principals")))
	}
	if unknown > 0 {
		parts = append(parts, fmt.Sprintf("%d unknown %s", unknown, plural(unknown, "member", "members")))
	}
	switch len(parts) {
	case 0:
		return "no member"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// SignOff are the three outcomes a reviewer records for a review item.
var SignOff = []string{"Confirmed", "Requires justification", "Revoke"}

// subjectKey identifies a subject across findings and the access review.
func subjectKey(s *secureauditv1.SubjectRef) string {
	return fmt.Sprintf("%d/%s/%s", s.GetKind(), s.GetNamespace(), s.GetName())
}

// newReview builds the access review: one item per review subject, sorted
// with cluster-wide access first, then by subject, each linked to the
// findings about it.
func newReview(r *secureauditv1.Report, findings []*findingView) []reviewItem {
	bySubject := map[string][]int{}
	for _, f := range findings {
		bySubject[f.subjectKey] = append(bySubject[f.subjectKey], f.Number)
	}
	subjects := append([]*secureauditv1.ReviewSubject(nil), r.GetAccessReview()...)
	sort.SliceStable(subjects, func(i, j int) bool {
		ci, cj := clusterWide(subjects[i]), clusterWide(subjects[j])
		if ci != cj {
			return ci
		}
		return subjectText(subjects[i].GetSubject()) < subjectText(subjects[j].GetSubject())
	})
	items := make([]reviewItem, 0, len(subjects))
	for i, s := range subjects {
		item := reviewItem{
			Number:      i + 1,
			Anchor:      fmt.Sprintf("review-%d", i+1),
			Subject:     subjectText(s.GetSubject()),
			key:         subjectKey(s.GetSubject()),
			Key:         s.GetKey(),
			Kind:        kindText(s.GetSubject().GetKind()),
			Resolved:    s.GetResolved(),
			Directory:   r.GetDirectoryAvailable(),
			Description: s.GetDescription(),
			Findings:    bySubject[subjectKey(s.GetSubject())],
			Builtin:     strings.HasPrefix(s.GetSubject().GetName(), "system:"),
		}
		for _, g := range s.GetGrants() {
			item.Grants = append(item.Grants, grantView{
				Binding:  bindingText(g.GetBinding()),
				Role:     roleText(g.GetRole()),
				Scope:    scopeText(g.GetScope()),
				Cluster:  g.GetScope().GetLevel() == secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER,
				Missing:  g.GetRole().GetMissing(),
				Route:    g.GetRoute(),
				Eligible: g.GetEligible(),
			})
		}
		if s.GetPerson() != nil {
			p := newPerson(s.GetPerson())
			item.Person = &p
		}
		for _, m := range s.GetMembers() {
			p := newPerson(m)
			item.Members = append(item.Members, p)
			if p.Guest {
				item.Guests++
			}
			if p.Disabled {
				item.Disabled++
			}
		}
		for _, o := range s.GetOwners() {
			item.Owners = append(item.Owners, newOwner(o))
		}
		item.Note = plausibilityNote(r, s)
		items = append(items, item)
	}
	return items
}

// plausibilityNote is the reasoning step's judgement of whether the
// subject's access is plausible, labelled with who wrote it, or "" when the
// report carries no judgement of this subject.
func plausibilityNote(r *secureauditv1.Report, s *secureauditv1.ReviewSubject) string {
	for _, a := range r.GetReasoning().GetAccessReviews() {
		if a.GetSubject().GetKind() != s.GetSubject().GetKind() || a.GetSubject().GetName() != s.GetSubject().GetName() {
			continue
		}
		p := a.GetPlausibility()
		if p == secureauditv1.Plausibility_PLAUSIBILITY_UNSPECIFIED || p == secureauditv1.Plausibility_PLAUSIBILITY_NOT_ASSESSED {
			return ""
		}
		judgement := strings.ToLower(strings.TrimPrefix(p.String(), "PLAUSIBILITY_"))
		note := judgement
		if a.GetReason() != "" {
			note += ": " + a.GetReason()
		}
		return note + " (" + sourceLabel(r.GetReasoning(), a.GetSource()) + ")"
	}
	return ""
}

func clusterWide(s *secureauditv1.ReviewSubject) bool {
	for _, g := range s.GetGrants() {
		if g.GetScope().GetLevel() == secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER {
			return true
		}
	}
	return false
}

// goodPoint is one thing the audit found in order.
type goodPoint string

// newGood lists what looks good, each point derived from the report's data
// so that it can never contradict a finding.
func newGood(r *secureauditv1.Report, v *view) []goodPoint {
	var out []goodPoint
	crit := 0
	adminBound := false
	missing := false
	for _, f := range r.GetFindings() {
		if f.GetSeverity() == secureauditv1.Severity_SEVERITY_CRITICAL {
			crit++
		}
		if f.GetRole().GetName() == "cluster-admin" {
			adminBound = true
		}
		if f.GetRole().GetMissing() {
			missing = true
		}
	}
	// A snapshot that left objects out (too large to audit) proves
	// nothing about grants: those objects may hold what these deny.
	rbacComplete := v.UnauditedCount == 0
	if len(r.GetFindings()) == 0 && rbacComplete {
		out = append(out, "No rule matched any subject outside the platform-managed bindings.")
	}
	if crit == 0 && rbacComplete {
		out = append(out, "No critical findings: no subject outside the platform holds unrestricted control of the cluster.")
	}
	if !adminBound && rbacComplete {
		out = append(out, "cluster-admin is bound only to platform-managed subjects (CIS 5.1.1).")
	}
	if !missing && rbacComplete {
		out = append(out, "Every binding outside the platform references a role that exists.")
	}
	// An incomplete directory answer proves nothing about identities.
	if r.GetDirectoryAvailable() && !v.Partial() {
		if r.GetUnresolvedPrincipals() == 0 {
			out = append(out, "Every user and group bound in the cluster was found in Entra ID.")
		}
		guests, disabled := 0, 0
		for _, item := range v.Review {
			guests += item.Guests
			disabled += item.Disabled
			if item.Person != nil {
				if item.Person.Guest {
					guests++
				}
				if item.Person.Disabled {
					disabled++
				}
			}
		}
		if len(v.Review) > 0 && guests == 0 {
			out = append(out, "No guest account holds access, directly or through a group.")
		}
		if len(v.Review) > 0 && disabled == 0 {
			out = append(out, "No disabled account holds access, directly or through a group.")
		}
	}
	if n := len(v.Review); n > 0 {
		scoped := 0
		for _, item := range v.Review {
			cluster := false
			for _, g := range item.Grants {
				cluster = cluster || g.Cluster
			}
			if !cluster {
				scoped++
			}
		}
		if scoped > 0 && rbacComplete {
			out = append(out, goodPoint(fmt.Sprintf("%d of %d users and groups hold access confined to namespaces.", scoped, n)))
		}
	}
	return out
}

// historyView is what changed since the previous audit.
type historyView struct {
	PreviousID string
	PreviousAt string
	New        []*findingView
	Changed    []changeView
	Resolved   []*findingView
}

type changeView struct {
	Finding  *findingView
	Previous string
	Fields   string
}

func newHistory(h *secureauditv1.AuditHistory, byID map[string]*findingView) *historyView {
	if h == nil {
		return nil
	}
	hv := &historyView{PreviousID: h.GetPreviousAuditId(), PreviousAt: timeText(h.GetPreviousGeneratedAt())}
	// Hits of one entry share its number: an entry is listed once, by the
	// first of its new or changed hits.
	listed := map[int]bool{}
	for _, id := range h.GetNewFindingIds() {
		if f, ok := byID[id]; ok && !listed[f.Number] {
			listed[f.Number] = true
			hv.New = append(hv.New, f)
		}
	}
	for _, c := range h.GetChanged() {
		if f, ok := byID[c.GetFindingId()]; ok && !listed[f.Number] {
			listed[f.Number] = true
			hv.Changed = append(hv.Changed, changeView{Finding: f, Previous: severityText(c.GetPreviousSeverity()), Fields: strings.Join(c.GetFields(), ", ")})
		}
	}
	for i, f := range h.GetResolved() {
		hv.Resolved = append(hv.Resolved, newFindingView(i+1, f))
	}
	sort.SliceStable(hv.New, func(i, j int) bool { return hv.New[i].Number < hv.New[j].Number })
	sort.SliceStable(hv.Changed, func(i, j int) bool { return hv.Changed[i].Finding.Number < hv.Changed[j].Finding.Number })
	return hv
}
