package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/google/uuid"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// OSCALVersion is the OSCAL version of the assessment results.
const OSCALVersion = "1.1.2"

// oscalNamespace seeds the name-based (v5) UUIDs of the OSCAL document, so
// that the same report gives the same UUIDs.
var oscalNamespace = uuid.MustParse("5b1d3c9e-7a43-4f0e-9d55-1f7e2a0c6b11")

type oscalDoc struct {
	AssessmentResults oscalAR `json:"assessment-results"`
}

type oscalAR struct {
	UUID     string        `json:"uuid"`
	Metadata oscalMetadata `json:"metadata"`
	ImportAP oscalImportAP `json:"import-ap"`
	Results  []oscalResult `json:"results"`
}

type oscalMetadata struct {
	Title        string      `json:"title"`
	LastModified string      `json:"last-modified"`
	Version      string      `json:"version"`
	OSCALVersion string      `json:"oscal-version"`
	Props        []oscalProp `json:"props,omitempty"`
}

type oscalImportAP struct {
	Href    string `json:"href"`
	Remarks string `json:"remarks,omitempty"`
}

type oscalProp struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	NS    string `json:"ns,omitempty"`
}

// prop is a property in secureaudit's namespace. OSCAL's value is a token
// of printable text with no space at either end (`^\S(.*\S)?$`): control
// characters and line separators are written as \uXXXX escapes, spaces at
// the ends trimmed, and an empty value is "unknown", so that a cluster
// named with a newline still yields a document that validates, and shows
// the name as it is.
func prop(name, value string) oscalProp {
	var b strings.Builder
	for _, r := range value {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	v := strings.TrimFunc(b.String(), unicode.IsSpace)
	if v == "" {
		v = "unknown"
	}
	return oscalProp{Name: name, Value: v, NS: propNS}
}

type oscalResult struct {
	UUID             string             `json:"uuid"`
	Title            string             `json:"title"`
	Description      string             `json:"description"`
	Start            string             `json:"start"`
	Props            []oscalProp        `json:"props,omitempty"`
	ReviewedControls oscalReviewed      `json:"reviewed-controls"`
	Observations     []oscalObservation `json:"observations,omitempty"`
	Findings         []oscalFinding     `json:"findings,omitempty"`
}

type oscalReviewed struct {
	ControlSelections []oscalSelection `json:"control-selections"`
}

type oscalSelection struct {
	IncludeControls []oscalControlRef `json:"include-controls"`
}

type oscalControlRef struct {
	ControlID string `json:"control-id"`
}

type oscalObservation struct {
	UUID        string         `json:"uuid"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Props       []oscalProp    `json:"props"`
	Methods     []string       `json:"methods"`
	Types       []string       `json:"types"`
	Subjects    []oscalSubject `json:"subjects"`
	Collected   string         `json:"collected"`
	Remarks     string         `json:"remarks,omitempty"`
}

type oscalSubject struct {
	SubjectUUID string      `json:"subject-uuid"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Props       []oscalProp `json:"props,omitempty"`
}

type oscalFinding struct {
	UUID                string            `json:"uuid"`
	Title               string            `json:"title"`
	Description         string            `json:"description"`
	Target              oscalTarget       `json:"target"`
	RelatedObservations []oscalRelatedObs `json:"related-observations,omitempty"`
	Props               []oscalProp       `json:"props,omitempty"`
}

type oscalTarget struct {
	Type     string      `json:"type"`
	TargetID string      `json:"target-id"`
	Status   oscalStatus `json:"status"`
}

type oscalStatus struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

type oscalRelatedObs struct {
	ObservationUUID string `json:"observation-uuid"`
}

// propNS is the namespace of SecureAudit's own OSCAL properties.
const propNS = "https://secureaudit.dev/ns/oscal"

// OSCAL renders the report as OSCAL assessment results (JSON): one
// observation per main finding, and one finding per control that the rule
// catalogue maps to, not-satisfied with its observations when a finding
// cites it, satisfied otherwise. Control IDs are lowercased (cis-5.1.1,
// soc2-cc6.3) as OSCAL catalogues spell them. There is no assessment plan
// document; import-ap points at the report itself and says so.
func OSCAL(r *secureauditv1.Report) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteOSCAL(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteOSCAL writes the OSCAL document (see OSCAL) to w.
func WriteOSCAL(w io.Writer, r *secureauditv1.Report) error {
	return writeOSCAL(w, r, defaultPool())
}

// writeOSCAL is WriteOSCAL with the observations and findings encoded by p.
func writeOSCAL(w io.Writer, r *secureauditv1.Report, p pool) error {
	v, err := oscalDocument(r)
	if err != nil {
		return err
	}
	// The observations and findings, nearly all of the document, are
	// encoded one at a time.
	doc := v.(oscalDoc)
	res := &doc.AssessmentResults.Results[0]
	obs, fs := res.Observations, res.Findings
	lists := map[string]int{}
	if len(obs) > 0 {
		res.Observations = []oscalObservation{{}}
		lists[oscalObservations] = len(obs)
	}
	if len(fs) > 0 {
		res.Findings = []oscalFinding{{}}
		lists[oscalFindings] = len(fs)
	}
	return writeJSON(w, doc, lists, func(path string, i int) any {
		if path == oscalObservations {
			return obs[i]
		}
		return fs[i]
	}, p)
}

// revocationControl is the control a revocation not carried out breaks.
const revocationControl = "SOC2-CC6.2"

// The paths of the OSCAL document's large arrays.
const (
	oscalObservations = "assessment-results/results/observations"
	oscalFindings     = "assessment-results/results/findings"
)

// oscalDocument builds the OSCAL document to encode.
func oscalDocument(r *secureauditv1.Report) (any, error) {
	at := timeText(r.GetGeneratedAt())
	id := func(parts ...string) string {
		return uuid.NewSHA1(oscalNamespace, []byte(r.GetAuditId()+"/"+strings.Join(parts, "/"))).String()
	}
	findings := ordered(r.GetFindings())
	byControl := map[string][]string{}
	folded := map[string]int{} // per control, citations through folded rule hits only
	// Every control the risk-agent's registry maps a rule to (with its
	// title), and any a finding cites.
	controls := map[string]bool{}
	titles := controlTitles{}.add(r.GetControls())
	for _, c := range r.GetControls() {
		controls[c.GetId()] = true
	}
	var observations []oscalObservation
	// Accepted risks are observations too, marked accepted: they still
	// count against their controls (not satisfied, risk accepted).
	acceptedBy := map[string]*secureauditv1.AcceptedFinding{}
	returnedBy := map[string]*secureauditv1.AcceptedFinding{}
	acceptedIn := map[string]int{} // per control, citations by accepted risks
	for _, af := range r.GetAcceptedRisks() {
		acceptedBy[af.GetFinding().GetId()] = af
		findings = append(findings, af.GetFinding())
		for _, c := range controlsOf(af.GetFinding()) {
			acceptedIn[c]++
		}
	}
	for _, af := range r.GetReturnedRisks() {
		returnedBy[af.GetFinding().GetId()] = af
	}
	for _, f := range findings {
		obsID := id("observation", f.GetId())
		// Every control the finding bears on, its folded rule hits' too:
		// a bound '*/*/*' is RBAC-001 and also breaks CIS 5.1.3.
		titles.add(f.GetControlTitles())
		for _, c := range controlsOf(f) {
			controls[c] = true
			byControl[c] = append(byControl[c], obsID)
			if !slices.Contains(f.GetControls(), c) {
				folded[c]++
			}
		}
		props := []oscalProp{
			prop("finding-id", f.GetId()),
			prop("rule-id", f.GetRuleId()),
			prop("severity", strings.ToLower(severityText(f.GetSeverity()))),
			prop("action", strings.ToLower(string(actionFor(f)))),
		}
		remarks := "Remediation: " + f.GetRemediation()
		if af := acceptedBy[f.GetId()]; af != nil {
			a := af.GetAcceptance()
			props = append(props, prop("acceptance-status", "accepted"), prop("acceptance-id", fmt.Sprint(a.GetId())),
				prop("acceptance-ticket", a.GetTicket()), prop("acceptance-expires", timeText(a.GetExpiresAt())),
				prop("acceptance-requested-by", deciderText(a.GetRequestedBy())), prop("acceptance-approved-by", deciderText(a.GetApprovedBy())))
			remarks = "Risk accepted (deviation approved): " + a.GetReason() + ". " + remarks
		} else if af := returnedBy[f.GetId()]; af != nil {
			props = append(props, prop("acceptance-status", strings.ReplaceAll(statusText(af.GetStatus()), " ", "-")), prop("acceptance-id", fmt.Sprint(af.GetAcceptance().GetId())))
			remarks = "Back from a risk acceptance: " + af.GetDetail() + ". " + remarks
		}
		observations = append(observations, oscalObservation{
			UUID:  obsID,
			Title: f.GetTitle(),
			Description: fmt.Sprintf("%s holds %s. %s", subjectText(f.GetSubject()), accessText(f),
				firstNonEmpty(f.GetDescription(), f.GetSeverityReason())),
			Props:   props,
			Methods: []string{"TEST"},
			Types:   []string{"finding"},
			Subjects: []oscalSubject{{
				SubjectUUID: id("subject", subjectKey(f.GetSubject())),
				Type:        "party",
				Title:       subjectText(f.GetSubject()),
			}},
			Collected: at,
			Remarks:   remarks,
		})
	}
	// A revocation the access review asked for and this audit found not
	// carried out is a finding of its own against CC6.2 (access removed
	// when no longer needed): the control cannot be satisfied while it
	// stands, whatever the rule hits say.
	for _, x := range r.GetReview().GetRevocations() {
		if x.GetState() != secureauditv1.RevocationState_REVOCATION_STATE_STILL_PRESENT {
			continue
		}
		obsID := id("revocation", fmt.Sprint(x.GetId()))
		controls[revocationControl] = true
		byControl[revocationControl] = append(byControl[revocationControl], obsID)
		origin := "decided by " + deciderText(x.GetDecidedBy())
		if x.GetDecidedBy() == nil {
			origin = "the report's Revoke action on finding " + x.GetFindingId()
		}
		var left []string
		for _, b := range x.GetRemaining() {
			left = append(left, bindingText(b))
		}
		sev := x.GetSeverity()
		if sev == secureauditv1.Severity_SEVERITY_UNSPECIFIED {
			sev = secureauditv1.Severity_SEVERITY_HIGH
		}
		observations = append(observations, oscalObservation{
			UUID:  id("revocation", fmt.Sprint(x.GetId())),
			Title: "revoked access still present",
			Description: fmt.Sprintf("A revocation of %s's access (%s, at audit %s) was not carried out: still granted through %s, %d %s after it was asked for.",
				subjectText(x.GetSubject()), origin, x.GetAuditId(), firstNonEmpty(strings.Join(left, ", "), "its bindings"),
				x.GetAuditsSurvived(), plural(int(x.GetAuditsSurvived()), "audit", "audits")),
			Props: []oscalProp{
				prop("revocation-id", fmt.Sprint(x.GetId())),
				prop("rule-id", RevocationRuleID),
				prop("severity", strings.ToLower(severityText(sev))),
				prop("action", strings.ToLower(string(ActionRevoke))),
			},
			Methods: []string{"TEST"},
			Types:   []string{"finding"},
			Subjects: []oscalSubject{{
				SubjectUUID: id("subject", subjectKey(x.GetSubject())),
				Type:        "party",
				Title:       subjectText(x.GetSubject()),
			}},
			Collected: at,
			Remarks:   "Remediation: remove the binding, or the subject from it.",
		})
	}
	if _, ok := titles[revocationControl]; !ok && controls[revocationControl] {
		titles[revocationControl] = "Access is granted on authorization and removed when no longer needed"
	}
	ids := make([]string, 0, len(controls))
	for c := range controls {
		ids = append(ids, c)
	}
	sort.Slice(ids, func(i, j int) bool { return controlLess(ids[i], ids[j]) })
	var refs []oscalControlRef
	var out []oscalFinding
	for _, c := range ids {
		cid := strings.ToLower(c)
		refs = append(refs, oscalControlRef{ControlID: cid})
		f := oscalFinding{
			UUID:   id("finding", c),
			Title:  titles.text(c),
			Target: oscalTarget{Type: "objective-id", TargetID: cid},
		}
		if obs := byControl[c]; len(obs) > 0 {
			f.Description = fmt.Sprintf("%d %s of this audit %s this control.", len(obs), plural(len(obs), "finding", "findings"), plural(len(obs), "cites", "cite"))
			if n := folded[c]; n > 0 {
				f.Description += fmt.Sprintf(" %d of them %s it through a rule hit folded into a broader finding of the same grant.", n, plural(n, "cites", "cite"))
			}
			f.Target.Status = oscalStatus{State: "not-satisfied", Reason: "fail"}
			if n := acceptedIn[c]; n > 0 {
				f.Description += fmt.Sprintf(" %d of them %s: not satisfied, risk accepted.", n, plural(n, "is an accepted risk", "are accepted risks"))
				f.Props = append(f.Props, prop("compliance", "not satisfied, risk accepted"))
			}
			for _, o := range obs {
				f.RelatedObservations = append(f.RelatedObservations, oscalRelatedObs{ObservationUUID: o})
			}
		} else {
			f.Description = "No rule mapped to this control matched a subject outside the platform-managed bindings."
			f.Target.Status = oscalStatus{State: "satisfied", Reason: "pass"}
		}
		out = append(out, f)
	}
	identity := "not available"
	if r.GetDirectoryAvailable() {
		identity = "available"
		if n := len(r.GetDirectoryErrors()); n > 0 || r.GetDirectoryPartial() {
			identity = fmt.Sprintf("incomplete (%d directory lookups failed after retries; identity findings about those principals may be missing)", n)
		}
	}
	rbacData := ""
	if n := max(len(r.GetUnauditedObjects()), int(r.GetUnauditedCount())); n > 0 || r.GetSnapshotPartial() {
		rbacData = fmt.Sprintf("; RBAC data incomplete (%d objects too large to audit were left out, each reported as RBAC-050)", n)
	}
	doc := oscalDoc{AssessmentResults: oscalAR{
		UUID: id("assessment-results"),
		Metadata: oscalMetadata{
			Title:        "RBAC audit of " + r.GetCluster(),
			LastModified: at,
			Version:      r.GetAuditId(),
			OSCALVersion: OSCALVersion,
			Props: []oscalProp{
				prop("cluster", r.GetCluster()),
				prop("rule-catalogue", firstNonEmpty(r.GetCatalogueVersion(), "unknown")),
			},
		},
		ImportAP: oscalImportAP{Href: "#" + id("assessment-plan"), Remarks: "SecureAudit runs a fixed plan: every rule of its catalogue against the cluster's RBAC snapshot."},
		Results: []oscalResult{{
			UUID:        id("result"),
			Title:       "RBAC audit " + r.GetAuditId(),
			Description: fmt.Sprintf("Automated review of Kubernetes RBAC of cluster %s (%s), identity data %s%s.", r.GetCluster(), objectsText(r.GetCounts()), identity, rbacData),
			Start:       at,
			Props: []oscalProp{
				prop("audit-id", r.GetAuditId()),
				prop("reasoning-provider", firstNonEmpty(r.GetReasoningProvider(), providerNone)),
			},
			ReviewedControls: oscalReviewed{ControlSelections: []oscalSelection{{IncludeControls: refs}}},
			Observations:     observations,
			Findings:         out,
		}},
	}}
	return doc, nil
}

// controlLess orders CIS before SOC 2, and numbered parts numerically.
func controlLess(a, b string) bool {
	pa, pb := strings.FieldsFunc(a, splitControl), strings.FieldsFunc(b, splitControl)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		var na, nb int
		_, ea := fmt.Sscanf(pa[i], "%d", &na)
		_, eb := fmt.Sscanf(pb[i], "%d", &nb)
		if ea == nil && eb == nil && na != nb {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func splitControl(r rune) bool { return r == '-' || r == '.' }

// writeJSON encodes v to w indented by two spaces, ending in a newline, as
// a json.Encoder with SetIndent("", "  ") would. The compact encoding of v
// is held and indented into w, except for the arrays at the paths in lists
// (see spliceLists), which v holds as placeholders: their elements, from
// item, are encoded and indented by p (on every core, see pool) as they
// are written; item may be called from several goroutines at once.
func writeJSON(w io.Writer, v any, lists map[string]int, item func(path string, i int) any, p pool) error {
	var compact bytes.Buffer
	if err := json.NewEncoder(&compact).Encode(v); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	src := compact.Bytes()
	end := len(src)
	for end > 0 && isSpace(src[end-1]) {
		end--
	}
	newEncoder := func() encoder {
		var one bytes.Buffer
		enc := json.NewEncoder(&one)
		return func(path string, i int) ([]byte, error) {
			one.Reset()
			if err := enc.Encode(item(path, i)); err != nil {
				return nil, fmt.Errorf("encode JSON: %w", err)
			}
			return one.Bytes(), nil // its newline is whitespace the indenter drops
		}
	}
	in := &indenter{w: w}
	err := spliceLists(src[:end], lists, in.write, func(path string, n int) error {
		return p.writeList(in, path, n, newEncoder)
	})
	if err == nil {
		in.out = append(in.out, src[end:]...)
		in.flush()
	}
	if in.err != nil {
		return fmt.Errorf("write JSON: %w", in.err)
	}
	return err
}
