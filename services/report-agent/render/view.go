package render

import (
	"cmp"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/entry"
)

// view is the report as a reader sees it: display text computed once from
// the Report, still unescaped, so that every human-readable format renders
// the same content and escapes it in its own syntax.
type view struct {
	// Reasoning is the reasoning step's text, shown beside the findings and
	// labelled with its source; nil when the report carries none.
	Reasoning   *secureauditv1.Reasoning
	Cluster     string
	AuditID     string
	GeneratedAt string
	Source      string
	Origin      string
	Objects     string
	Skipped     []kindCount
	Directory   bool
	Unresolved  uint32
	// Failed are the directory lookups that failed after retries (past the
	// report's bound, a last entry counts the rest) and FailedCount how
	// many failed in all; when any did, identity findings about those
	// principals may be missing.
	Failed      []lookupFailure
	FailedCount int
	// Unaudited names (up to maxUnauditedShown) the objects the snapshot
	// left out as too large to audit, and UnauditedCount counts them all:
	// when any was, the RBAC data is incomplete.
	Unaudited      []string
	UnauditedCount int
	Provider       string
	Catalogue      string
	// Semantics says which server version's authorizer semantics the rules
	// applied and where the version came from; empty for older reports.
	Semantics string
	// Counts and Total count entries (one per grant); TotalHits the rule
	// hits they hold, as report.json lists them.
	Counts     []severityCount
	Total      int
	TotalHits  int
	InfraTotal int
	Findings   []*findingView
	Infra      []*findingView
	// Informational are the hits of informational entries
	// (entry.Entry.Informational): not in the reviewer's list, counted in
	// TotalHits and in compliance status, listed apart.
	Informational []*findingView

	// Top is the single most important finding, chosen from the proven
	// ones (see headline), nil without one.
	Top *findingView
	// TopChoke is the choke point the headline names instead of Top, when
	// one closes more than one proven path.
	TopChoke *chokeView
	// Choke are the choke points, most paths closed first; Ungrouped the
	// path findings no choke point groups.
	Choke     []chokeView
	Ungrouped []*findingView
	// Identity, AKS and Permission split Findings into the report's
	// sections.
	Identity   []*findingView
	AKS        []*findingView
	Permission []*findingView
	// AKSCluster is the AKS cluster's configuration, nil without one.
	AKSCluster *aksView
	// Paths are the findings that carry an escalation path.
	Paths   []*findingView
	Review  []reviewItem
	Good    []goodPoint
	History *historyView
	// Accepted are the findings approved risk acceptances keep out of
	// Findings; Expiring those whose acceptance ends within ExpiringDays;
	// Returned, by finding ID, the findings of Findings back from an
	// expired acceptance or a changed grant.
	Accepted     []acceptedView
	Expiring     []acceptedView
	ExpiringDays int
	Returned     map[string]acceptedView
	// Campaigns and Revocations are the cluster's access review
	// campaigns and the revocations this audit checked (report.review).
	Campaigns   []campaignView
	Revocations []revocationView
}

type kindCount struct {
	Kind  string
	Count uint32
}

type severityCount struct {
	Severity string
	// Main counts the entries of the severity; Hits the rule hits they hold.
	Main  int
	Hits  int
	Infra int
}

type findingView struct {
	Number         int
	ID             string
	RuleID         string
	Title          string
	Severity       string
	SeverityReason string
	Subject        string
	Binding        string
	Role           string
	RoleMissing    bool
	// SubjectMissing: the subject is a ServiceAccount the snapshot lacks
	// (Finding.subject_missing), so the grant is latent.
	SubjectMissing bool
	Scope          string
	Description    string
	Controls       []string
	// Folded are the rules whose hits this finding stands for.
	Folded      []string
	Rules       []*secureauditv1.PolicyRule
	Remediation string

	Anchor string
	// Access says what the subject holds, where: the role through the
	// binding and scope, or the binding alone when no role applies.
	Access        string
	Action        Action
	Identity      bool
	ControlTexts  []string
	SeverityClass string
	Cluster       bool
	// Path is the finding's escalation path as steps, when it has one.
	Path []string
	// Steps are the structured steps, each with the grant and rules behind
	// it; empty for a path stored only in the description.
	Steps []stepView
	// Conditional marks a path with a step the snapshot cannot prove.
	Conditional bool
	// Fix is the remediation split into prose and commands that run.
	Fix fixView
	// Pivot is the number of the choke point the path is grouped under,
	// 0 for none.
	Pivot int
	// Note is the reasoning step's explanation of the finding, when it
	// wrote one; always shown labelled with who wrote it.
	Note *modelNote
	// Entry is what the entry this finding leads holds (capabilities,
	// workloads, every rule hit); nil for a hit that leads no entry.
	Entry      *entryView
	subjectKey string
	kind       secureauditv1.SubjectKind
	// app: the subject is a service principal bound as a User.
	app       bool
	severity  secureauditv1.Severity
	namespace string
}

// providerNone is the deterministic reasoning provider.
const providerNone = "none"

// severities lists the defined severities, most severe first.
var severities = []secureauditv1.Severity{
	secureauditv1.Severity_SEVERITY_CRITICAL,
	secureauditv1.Severity_SEVERITY_HIGH,
	secureauditv1.Severity_SEVERITY_MEDIUM,
	secureauditv1.Severity_SEVERITY_LOW,
	secureauditv1.Severity_SEVERITY_INFO,
}

func newView(r *secureauditv1.Report) view {
	v := view{
		Cluster:     r.GetCluster(),
		AuditID:     r.GetAuditId(),
		GeneratedAt: "unknown",
		Source:      sourceText(r.GetSource()),
		Origin:      r.GetOrigin(),
		Objects:     objectsText(r.GetCounts()),
		Directory:   r.GetDirectoryAvailable(),
		Unresolved:  r.GetUnresolvedPrincipals(),
		Provider:    r.GetReasoningProvider(),
		Catalogue:   r.GetCatalogueVersion(),
		Reasoning:   r.GetReasoning(),
		Semantics:   semanticsText(r.GetSemantics()),
	}
	if r.GetGeneratedAt() != nil {
		v.GeneratedAt = timeText(r.GetGeneratedAt())
	}
	for _, e := range r.GetDirectoryErrors() {
		v.Failed = append(v.Failed, lookupFailure{Lookup: e.GetLookup(), Message: e.GetMessage()})
	}
	if r.GetDirectoryPartial() && len(v.Failed) == 0 {
		v.Failed = append(v.Failed, lookupFailure{Lookup: "directory", Message: "the entra-agent marked its answer partial without naming the lookups"})
	}
	v.FailedCount = max(len(v.Failed), int(r.GetDirectoryErrorCount()))
	for _, o := range r.GetUnauditedObjects() {
		if len(v.Unaudited) == maxUnauditedShown {
			break
		}
		name := o.GetKind() + " " + o.GetName()
		if o.GetNamespace() != "" {
			name = o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		}
		v.Unaudited = append(v.Unaudited, name)
	}
	v.UnauditedCount = max(len(r.GetUnauditedObjects()), int(r.GetUnauditedCount()))
	if r.GetSnapshotPartial() && v.UnauditedCount == 0 {
		v.UnauditedCount = 1 // marked partial without naming the objects
	}
	if v.Provider == "" {
		v.Provider = providerNone
	}
	for kind, n := range r.GetSkipped() {
		v.Skipped = append(v.Skipped, kindCount{Kind: kind, Count: n})
	}
	sort.Slice(v.Skipped, func(i, j int) bool { return v.Skipped[i].Kind < v.Skipped[j].Kind })

	entries, informational := entry.Split(entry.Group(ordered(r.GetFindings())))
	main, hits := map[secureauditv1.Severity]int{}, map[secureauditv1.Severity]int{}
	for _, e := range entries {
		main[e.Severity()]++
		hits[e.Severity()] += len(e.Hits())
	}
	for _, e := range informational {
		hits[e.Severity()] += len(e.Hits())
	}
	infra := countBySeverity(r.GetInfrastructureFindings())
	for _, s := range severities {
		v.Counts = append(v.Counts, severityCount{Severity: severityText(s), Main: main[s], Hits: hits[s], Infra: infra[s]})
	}
	v.Total = len(entries)
	v.TotalHits = len(r.GetFindings())
	v.InfraTotal = len(r.GetInfrastructureFindings())
	pivots := pivotsOf(r)
	notes := map[string]*modelNote{}
	for _, a := range r.GetReasoning().GetAnnotations() {
		notes[a.GetFindingId()] = &modelNote{
			Label:       sourceLabel(r.GetReasoning(), a.GetSource()),
			Explanation: a.GetExplanation(),
			FirstStep:   a.GetFirstStep(),
		}
	}
	// One view per entry, shown by its lead hit; every hit keeps a view of
	// its own, numbered and anchored as its entry, for the paths, choke
	// points and history that name hits by finding ID. Each view is built
	// once and every list and the lookup hold it by reference.
	byID := map[string]*findingView{}
	for i, e := range entries {
		lead := e.Lead()
		fv := newFindingView(i+1, lead)
		fv.Note = notes[fv.ID]
		newEntryView(e, fv)
		if c, ok := pivots[fv.ID]; ok {
			fv.Fix = c.fix(fv.Fix)
			fv.Pivot = c.number
		}
		v.Findings = append(v.Findings, fv)
		switch {
		case aksFinding(lead):
			if lead.GetSubject() == nil {
				// The AKS section's view, not the main list's.
				aks := *fv
				aks.Subject, aks.Access = "everyone who reaches the cluster", "the AKS cluster's configuration"
				fv = &aks
			}
			v.AKS = append(v.AKS, fv)
		case fv.Identity:
			v.Identity = append(v.Identity, fv)
		default:
			v.Permission = append(v.Permission, fv)
		}
		for _, f := range ordered(e.Hits()) {
			hv := fv
			if f != lead {
				hv = newFindingView(i+1, f)
				hv.Note = notes[hv.ID]
			}
			byID[hv.ID] = hv
			if len(hv.Path) > 0 {
				v.Paths = append(v.Paths, hv)
			}
		}
	}
	for _, e := range informational {
		for _, f := range ordered(e.Hits()) {
			hv := newFindingView(len(v.Informational)+1, f)
			hv.Anchor = fmt.Sprintf("info-%d", hv.Number)
			hv.Note = notes[hv.ID]
			v.Informational = append(v.Informational, hv)
			byID[hv.ID] = hv
		}
	}
	components := map[string]bool{}
	for _, f := range r.GetFindings() {
		if f.GetComponent() {
			components[subjectKey(f.GetSubject())] = true
		}
	}
	v.AKSCluster = newAKSView(r.GetAksCluster(), v.AKS)
	v.Choke, v.Ungrouped = newChoke(r.GetChokePoints(), byID, v.Paths, components)
	v.Top, v.TopChoke = headline(v.Findings, v.Choke)
	for i, f := range r.GetInfrastructureFindings() {
		fv := newFindingView(i+1, f)
		fv.Anchor = fmt.Sprintf("infra-%d", i+1)
		v.Infra = append(v.Infra, fv)
	}
	v.Review = newReview(r, v.Findings)
	v.Good = newGood(r, &v)
	v.History = newHistory(r.GetHistory(), byID)
	acceptedOf(&v, r)
	campaignsOf(&v, r)
	return v
}

// ordered sorts findings by severity, then cluster-wide before namespaced,
// then by namespace, keeping the risk-agent's order among equals.
func ordered(in []*secureauditv1.Finding) []*secureauditv1.Finding {
	out := append([]*secureauditv1.Finding(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GetSeverity() != b.GetSeverity() {
			return a.GetSeverity() < b.GetSeverity()
		}
		if a.GetScope().GetLevel() != b.GetScope().GetLevel() {
			return a.GetScope().GetLevel() < b.GetScope().GetLevel()
		}
		return a.GetScope().GetNamespace() < b.GetScope().GetNamespace()
	})
	return out
}

func timeText(t interface{ AsTime() time.Time }) string {
	if t == nil {
		return "unknown"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func countBySeverity(fs []*secureauditv1.Finding) map[secureauditv1.Severity]int {
	n := make(map[secureauditv1.Severity]int, len(severities))
	for _, f := range fs {
		n[f.GetSeverity()]++
	}
	return n
}

func newFindingView(n int, f *secureauditv1.Finding) *findingView {
	return &findingView{
		Number:         n,
		ID:             f.GetId(),
		RuleID:         f.GetRuleId(),
		Title:          f.GetTitle(),
		Severity:       severityText(f.GetSeverity()),
		SeverityReason: f.GetSeverityReason(),
		Subject:        subjectText(f.GetSubject()),
		Binding:        bindingText(f.GetBinding()),
		Role:           roleText(f.GetRole()),
		RoleMissing:    f.GetRole().GetMissing(),
		SubjectMissing: f.GetSubjectMissing(),
		Scope:          scopeText(f.GetScope()),
		Description:    f.GetDescription(),
		Controls:       controlsOf(f),
		Folded:         foldedRules(f),
		Rules:          f.GetMatchedRules(),
		Remediation:    f.GetRemediation(),
		Anchor:         fmt.Sprintf("finding-%d", n),
		Access:         accessText(f),
		Action:         actionFor(f),
		Identity:       identityFinding(f),
		ControlTexts:   titlesOf(f).texts(controlsOf(f)),
		SeverityClass:  strings.ToLower(severityText(f.GetSeverity())),
		Cluster:        f.GetScope().GetLevel() == secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER,
		Path:           findingPath(f),
		Steps:          newSteps(f),
		Conditional:    conditional(f),
		Fix:            newFix(f.GetRemediation()),
		subjectKey:     subjectKey(f.GetSubject()),
		kind:           f.GetSubject().GetKind(),
		app:            f.GetSubject().GetServicePrincipal(),
		severity:       f.GetSeverity(),
		namespace:      f.GetScope().GetNamespace(),
	}
}

func accessText(f *secureauditv1.Finding) string {
	parts := []string{"access"}
	if f.GetRole() != nil {
		parts = []string{roleText(f.GetRole())}
	}
	if f.GetBinding() != nil {
		parts = append(parts, "through "+bindingText(f.GetBinding()))
	}
	return strings.Join(parts, " ") + ", " + scopeText(f.GetScope())
}

// findingPath returns a finding's escalation path as readable steps, from
// its structured path. A PATH-001 finding stored before the contract had
// one carries the path only in its description ("Path (N steps): 1. A
// --[capability]--> B; 2. ..."), which this parses; any other finding has
// none.
func findingPath(f *secureauditv1.Finding) []string {
	if path := f.GetPath(); len(path) > 0 {
		steps := make([]string, len(path))
		for i, p := range path {
			capability := p.GetCapability()
			if p.GetBinding() != nil {
				capability += " (via " + bindingText(p.GetBinding()) + ", " + roleText(p.GetRole()) + ")"
			}
			steps[i] = p.GetFrom() + " \u2014[" + capability + "]\u2192 " + p.GetTo()
		}
		return steps
	}
	desc := f.GetDescription()
	i := strings.Index(desc, "Path (")
	if i < 0 {
		return nil
	}
	j := strings.Index(desc[i:], "): ")
	if j < 0 {
		return nil
	}
	rest := strings.TrimSuffix(strings.TrimSpace(desc[i+j+3:]), ".")
	parts := pathStep.Split(rest, -1)
	var steps []string
	for _, p := range parts {
		p = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), ";"))
		if p == "" {
			continue
		}
		p = strings.NewReplacer(" --[", " \u2014[", "]--> ", "]\u2192 ").Replace(p)
		steps = append(steps, p)
	}
	if len(steps) == 0 {
		return nil
	}
	return steps
}

// pathStep splits "1. a; 2. b" into its steps.
var pathStep = regexp.MustCompile(`(?:^|;\s+)[0-9]+\.\s+`)

func severityText(s secureauditv1.Severity) string {
	switch s {
	case secureauditv1.Severity_SEVERITY_CRITICAL:
		return "Critical"
	case secureauditv1.Severity_SEVERITY_HIGH:
		return "High"
	case secureauditv1.Severity_SEVERITY_MEDIUM:
		return "Medium"
	case secureauditv1.Severity_SEVERITY_LOW:
		return "Low"
	case secureauditv1.Severity_SEVERITY_INFO:
		return "Info"
	}
	return "Unspecified"
}

func sourceText(s secureauditv1.SnapshotSource) string {
	switch s {
	case secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_FILE:
		return "snapshot file"
	case secureauditv1.SnapshotSource_SNAPSHOT_SOURCE_LIVE:
		return "live API server"
	}
	return "unspecified"
}

func objectsText(c *secureauditv1.ObjectCounts) string {
	parts := []struct {
		n             uint32
		one, multiple string
	}{
		{c.GetNamespaces(), "namespace", "namespaces"},
		{c.GetRoles(), "Role", "Roles"},
		{c.GetClusterRoles(), "ClusterRole", "ClusterRoles"},
		{c.GetRoleBindings(), "RoleBinding", "RoleBindings"},
		{c.GetClusterRoleBindings(), "ClusterRoleBinding", "ClusterRoleBindings"},
		{c.GetServiceAccounts(), "ServiceAccount", "ServiceAccounts"},
		{c.GetWorkloads(), "workload", "workloads"},
	}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		noun := p.multiple
		if p.n == 1 {
			noun = p.one
		}
		out = append(out, fmt.Sprintf("%d %s", p.n, noun))
	}
	return strings.Join(out, ", ")
}

func kindText(k secureauditv1.SubjectKind) string {
	switch k {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		return "User"
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "Group"
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "ServiceAccount"
	}
	return "Subject"
}

func subjectText(s *secureauditv1.SubjectRef) string {
	if s == nil {
		return "none"
	}
	if s.GetServicePrincipal() {
		// AKS binds an application or managed identity as a User named by
		// its object ID: say what it is, so that no reader takes it for a
		// person.
		return fmt.Sprintf("Service principal %s (object ID %s, bound as a User)", cmp.Or(s.GetDisplayName(), s.GetName()), s.GetName())
	}
	text := kindText(s.GetKind()) + " " + s.GetName()
	if s.GetNamespace() != "" {
		text += " in " + s.GetNamespace()
	}
	if s.GetDisplayName() != "" {
		text += " (" + s.GetDisplayName() + ")"
	}
	return text
}

func bindingText(b *secureauditv1.BindingRef) string {
	if b == nil {
		return "none"
	}
	var kind string
	switch b.GetKind() {
	case secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING:
		kind = "RoleBinding"
	case secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING:
		kind = "ClusterRoleBinding"
	case secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT:
		kind = "Azure role assignment"
	case secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP:
		kind = "AKS admin group"
	default:
		kind = "Binding"
	}
	return inNamespace(kind+" "+b.GetName(), b.GetNamespace())
}

func roleText(r *secureauditv1.FindingRole) string {
	if r == nil {
		return "none"
	}
	var kind string
	switch r.GetKind() {
	case secureauditv1.RoleKind_ROLE_KIND_ROLE:
		kind = "Role"
	case secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE:
		kind = "ClusterRole"
	case secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE:
		kind = "Azure role"
	default:
		kind = "Role"
	}
	return inNamespace(kind+" "+r.GetName(), r.GetNamespace())
}

func scopeText(s *secureauditv1.Scope) string {
	switch s.GetLevel() {
	case secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER:
		return "cluster-wide"
	case secureauditv1.ScopeLevel_SCOPE_LEVEL_NAMESPACE:
		return "namespace " + s.GetNamespace()
	}
	return "unspecified"
}

func inNamespace(text, namespace string) string {
	if namespace == "" {
		return text
	}
	return text + " in " + namespace
}

// lookupFailure is a directory lookup that failed after retries.
type lookupFailure struct {
	Lookup  string
	Message string
}

// maxUnauditedShown is how many unaudited objects the summary names.
const maxUnauditedShown = 10

// UnauditedMore is how many unaudited objects the summary does not name.
func (v view) UnauditedMore() int { return v.UnauditedCount - len(v.Unaudited) }

// Partial reports whether the identity data is incomplete.
func (v view) Partial() bool { return len(v.Failed) > 0 }

// semanticsText says in one sentence which server version's authorizer
// semantics the rules applied, where the version came from, and what it
// changes; "" when the report does not say (older audits).
func semanticsText(s *secureauditv1.AuthorizerSemantics) string {
	if s.GetServerVersion() == "" {
		return ""
	}
	var from string
	switch s.GetSource() {
	case secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_DISCOVERY:
		from = "from the API server's /version"
	case secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_FLAG:
		from = "given with --server-version"
	case secureauditv1.ServerVersionSource_SERVER_VERSION_SOURCE_NODES:
		from = "the highest kubelet version of the snapshot's Nodes; the API server is at least that version"
	default:
		from = "assumed, since the snapshot names no version; pass --server-version or include the Nodes"
	}
	what := "exec, attach and port-forward need create on pods/exec, pods/attach and pods/portforward, so get alone is not reported as exec"
	if !s.GetStreamingNeedsCreate() {
		what = "before 1.35, get on pods/exec, pods/attach and pods/portforward (a websocket upgrade) gives exec, attach and port-forward, and is reported as such"
	}
	return "Kubernetes " + s.GetServerVersion() + " (" + from + "); " + what + "."
}
