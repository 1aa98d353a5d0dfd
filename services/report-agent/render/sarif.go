package render

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// SARIF 2.1.0 as GitHub code scanning reads it. Only the properties this
// report fills are declared; the schema forbids unknown ones in most
// objects, and the tests validate the output against it.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool              `json:"tool"`
	AutomationDetails sarifAutomationDetails `json:"automationDetails"`
	Results           []sarifResult          `json:"results"`
	Properties        map[string]any         `json:"properties,omitempty"`
}

type sarifAutomationDetails struct {
	ID string `json:"id"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifHelp         `json:"help"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	Properties           sarifRuleProperty `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifHelp struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
	Precision        string   `json:"precision"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	BaselineState       string            `json:"baselineState,omitempty"`
	CodeFlows           []sarifCodeFlow   `json:"codeFlows,omitempty"`
	RelatedLocations    []sarifRelated    `json:"relatedLocations,omitempty"`
	// Suppressions mark a finding a risk acceptance covers (kind external:
	// recorded outside the source, status accepted).
	Suppressions []sarifSuppression `json:"suppressions,omitempty"`
	Properties   sarifResultProps   `json:"properties"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

// sarifCodeFlow carries an escalation path: one thread flow whose
// locations are the steps, each at the binding that grants it.
type sarifCodeFlow struct {
	Message     sarifText         `json:"message"`
	ThreadFlows []sarifThreadFlow `json:"threadFlows"`
}

type sarifThreadFlow struct {
	Locations []sarifThreadFlowLocation `json:"locations"`
}

type sarifThreadFlowLocation struct {
	Location sarifStepLocation `json:"location"`
}

// sarifStepLocation is a location with a message; a step without a grant
// of its own has no physical location.
type sarifStepLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	Message          sarifText      `json:"message"`
}

// sarifRelated is a related location: for a choke point, one path it
// closes, at the binding of that path's first step.
type sarifRelated struct {
	ID               int            `json:"id"`
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
	Message          sarifText      `json:"message"`
}

type sarifResultProps struct {
	Severity string `json:"severity"`
	// GrantKey is the finding's grant key: every result of one grant, one
	// entry of the reviewer's list, has the same.
	GrantKey    string   `json:"grantKey,omitempty"`
	Action      Action   `json:"action"`
	Subject     string   `json:"subject"`
	Controls    []string `json:"controls,omitempty"`
	Remediation string   `json:"remediation"`
	// Acceptance says, for a finding back from a risk acceptance or
	// suppressed by one, what became of it: accepted, acceptance expired,
	// grant changed since acceptance, with the details.
	Acceptance string `json:"acceptance,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// FingerprintKey names the partial fingerprint that carries a finding's
// stable ID, so that code scanning tracks a finding across audits.
const FingerprintKey = "secureauditFindingId/v1"

// SARIF renders the main findings as a SARIF 2.1.0 log: one rule per rule
// ID with help text, one result per finding with the finding ID as its
// partial fingerprint and, when the report carries the previous audit of
// the cluster, a baselineState (new, unchanged, updated, and absent for
// resolved findings). Each result's location is a stable pseudo-path
// naming the binding (k8s/<cluster>/<namespace or _cluster>/<kind>/<name>),
// since RBAC objects have no file in a repository.
func SARIF(r *secureauditv1.Report) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteSARIF(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteSARIF writes the SARIF document (see SARIF) to w.
func WriteSARIF(w io.Writer, r *secureauditv1.Report) error {
	return writeSARIF(w, r, defaultPool())
}

// writeSARIF is WriteSARIF with the results encoded by p.
func writeSARIF(w io.Writer, r *secureauditv1.Report, p pool) error {
	v, err := sarifDocument(r)
	if err != nil {
		return err
	}
	// The results, nearly all of the document, are encoded one at a time.
	log := v.(sarifLog)
	run := &log.Runs[0]
	results := run.Results
	lists := map[string]int{}
	if len(results) > 0 {
		run.Results = []sarifResult{{}}
		lists["runs/results"] = len(results)
	}
	return writeJSON(w, log, lists, func(_ string, i int) any { return results[i] }, p)
}

// sarifDocument builds the SARIF document to encode.
func sarifDocument(r *secureauditv1.Report) (any, error) {
	findings := ordered(r.GetFindings())
	actions := entryActions(findings)
	h := r.GetHistory()
	state := map[string]string{}
	if h != nil {
		for _, f := range findings {
			state[f.GetId()] = "unchanged"
		}
		for _, id := range h.GetNewFindingIds() {
			state[id] = "new"
		}
		for _, c := range h.GetChanged() {
			state[c.GetFindingId()] = "updated"
		}
	}
	all := append([]*secureauditv1.Finding(nil), findings...)
	if h != nil {
		for _, f := range h.GetResolved() {
			all = append(all, f)
			state[f.GetId()] = "absent"
		}
	}

	ruleIndex := map[string]int{}
	var rules []sarifRule
	byRule := map[string]*secureauditv1.Finding{}
	var ids []string
	for _, f := range all {
		if _, ok := byRule[f.GetRuleId()]; !ok {
			byRule[f.GetRuleId()] = f
			ids = append(ids, f.GetRuleId())
		}
	}
	// Accepted risks are results too, suppressed with their justification.
	suppressed := map[string]*secureauditv1.AcceptedFinding{}
	for _, af := range r.GetAcceptedRisks() {
		if _, ok := byRule[af.GetFinding().GetRuleId()]; !ok {
			byRule[af.GetFinding().GetRuleId()] = af.GetFinding()
			ids = append(ids, af.GetFinding().GetRuleId())
		}
		suppressed[af.GetFinding().GetId()] = af
		all = append(all, af.GetFinding())
	}
	returned := map[string]*secureauditv1.AcceptedFinding{}
	for _, af := range r.GetReturnedRisks() {
		returned[af.GetFinding().GetId()] = af
	}
	sort.Strings(ids)
	for i, id := range ids {
		ruleIndex[id] = i
		rules = append(rules, sarifRuleFor(byRule[id]))
	}

	results := make([]sarifResult, 0, len(all))
	for _, f := range all {
		results = append(results, sarifResult{
			RuleID:              f.GetRuleId(),
			RuleIndex:           ruleIndex[f.GetRuleId()],
			Level:               sarifLevel(f.GetSeverity()),
			Message:             sarifText{Text: fmt.Sprintf("%s: %s holds %s. %s", f.GetTitle(), subjectText(f.GetSubject()), accessText(f), f.GetSeverityReason())},
			Locations:           []sarifLocation{sarifLocationFor(r.GetCluster(), f)},
			PartialFingerprints: map[string]string{FingerprintKey: f.GetId()},
			BaselineState:       state[f.GetId()],
			CodeFlows:           sarifCodeFlows(r.GetCluster(), f),
			Properties: sarifResultProps{
				Severity:    severityText(f.GetSeverity()),
				GrantKey:    f.GetGrantKey(),
				Action:      actions[f.GetId()],
				Subject:     subjectText(f.GetSubject()),
				Controls:    controlsOf(f), // with the folded hits' controls
				Remediation: f.GetRemediation(),
			},
		})
		res := &results[len(results)-1]
		if af, ok := suppressed[f.GetId()]; ok {
			a := af.GetAcceptance()
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted",
				Justification: fmt.Sprintf("%s (risk acceptance %d, ticket %s, requested by %s, approved by %s, until %s)", a.GetReason(), a.GetId(), a.GetTicket(),
					deciderText(a.GetRequestedBy()), deciderText(a.GetApprovedBy()), a.GetExpiresAt().AsTime().UTC().Format(time.DateOnly))}}
			res.Properties.Acceptance = "accepted"
		}
		if af, ok := returned[f.GetId()]; ok {
			res.Properties.Acceptance = statusText(af.GetStatus()) + ": " + af.GetDetail()
		}
	}
	if chokes := sarifChoke(r, findings, state); len(chokes) > 0 {
		ruleIndex[ChokeRuleID] = len(rules)
		rules = append(rules, sarifChokeRule())
		for i := range chokes {
			chokes[i].RuleIndex = ruleIndex[ChokeRuleID]
		}
		results = append(chokes, results...)
	}
	if revs := sarifRevocations(r); len(revs) > 0 {
		ruleIndex[RevocationRuleID] = len(rules)
		rules = append(rules, sarifRevocationRule())
		for i := range revs {
			revs[i].RuleIndex = ruleIndex[RevocationRuleID]
		}
		results = append(revs, results...)
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name:           "SecureAudit",
				InformationURI: "https://secureaudit.dev",
				Version:        r.GetCatalogueVersion(),
				Rules:          rules,
			}},
			AutomationDetails: sarifAutomationDetails{ID: "secureaudit/" + r.GetCluster() + "/" + r.GetAuditId()},
			Results:           results,
		}},
	}
	if rules == nil {
		log.Runs[0].Tool.Driver.Rules = []sarifRule{}
	}
	return log, nil
}

func sarifRuleFor(f *secureauditv1.Finding) sarifRule {
	controls := titlesOf(f).texts(f.GetControls())
	text := fmt.Sprintf("%s\n\nControls: %s.\n\nEach result names the binding to change and the exact command in its remediation property.",
		firstNonEmpty(f.GetDescription(), f.GetTitle()), listOr(controls, "none"))
	var md strings.Builder
	fmt.Fprintf(&md, "**%s**\n\n%s\n\n", mdText(f.GetTitle()), mdText(firstNonEmpty(f.GetDescription(), f.GetTitle())))
	md.WriteString("Controls:\n\n")
	for _, c := range controls {
		fmt.Fprintf(&md, "- %s\n", mdText(c))
	}
	md.WriteString("\nEach result names the binding to change and the exact command in its `remediation` property.\n")
	return sarifRule{
		ID:                   f.GetRuleId(),
		Name:                 ruleName(f.GetTitle()),
		ShortDescription:     sarifText{Text: f.GetTitle()},
		FullDescription:      sarifText{Text: firstNonEmpty(f.GetDescription(), f.GetTitle())},
		Help:                 sarifHelp{Text: text, Markdown: md.String()},
		DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(f.GetSeverity())},
		Properties: sarifRuleProperty{
			Tags:             append([]string{"security", "rbac"}, f.GetControls()...),
			SecuritySeverity: securitySeverity(f.GetSeverity()),
			Precision:        "very-high",
		},
	}
}

func sarifLocationFor(cluster string, f *secureauditv1.Finding) sarifLocation {
	ns := f.GetBinding().GetNamespace()
	if ns == "" {
		ns = "_cluster"
	}
	kind := "bindings"
	switch f.GetBinding().GetKind() {
	case secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING:
		kind = "rolebindings"
	case secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING:
		kind = "clusterrolebindings"
	}
	name := f.GetBinding().GetName()
	if name == "" {
		name = "_none"
	}
	return sarifLocation{
		PhysicalLocation: sarifPhysical{
			ArtifactLocation: sarifArtifact{URI: "k8s/" + pathEscape(cluster) + "/" + pathEscape(ns) + "/" + kind + "/" + pathEscape(name)},
			Region:           sarifRegion{StartLine: 1},
		},
		LogicalLocations: []sarifLogical{{
			Name:               name,
			FullyQualifiedName: bindingText(f.GetBinding()),
			Kind:               "object",
		}},
	}
}

// sarifCodeFlows returns a finding's escalation path as a SARIF code flow,
// or nothing for a finding without a structured path.
func sarifCodeFlows(cluster string, f *secureauditv1.Finding) []sarifCodeFlow {
	steps := findingPath(f)
	if len(f.GetPath()) == 0 || len(steps) != len(f.GetPath()) {
		return nil
	}
	flow := sarifThreadFlow{}
	for i, p := range f.GetPath() {
		loc := sarifStepLocation{Message: sarifText{Text: fmt.Sprintf("%d. %s", i+1, steps[i])}}
		if p.GetBinding() != nil {
			at := sarifLocationFor(cluster, &secureauditv1.Finding{Binding: p.GetBinding()})
			loc.PhysicalLocation, loc.LogicalLocations = &at.PhysicalLocation, at.LogicalLocations
		}
		flow.Locations = append(flow.Locations, sarifThreadFlowLocation{Location: loc})
	}
	return []sarifCodeFlow{{
		Message:     sarifText{Text: fmt.Sprintf("%s reaches cluster-admin in %d %s", subjectText(f.GetSubject()), len(steps), plural(len(steps), "step", "steps"))},
		ThreadFlows: []sarifThreadFlow{flow},
	}}
}

// pathEscape keeps a name inside one URI path segment.
func pathEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func sarifLevel(s secureauditv1.Severity) string {
	switch s {
	case secureauditv1.Severity_SEVERITY_CRITICAL, secureauditv1.Severity_SEVERITY_HIGH:
		return "error"
	case secureauditv1.Severity_SEVERITY_MEDIUM:
		return "warning"
	}
	return "note"
}

// securitySeverity is GitHub's numeric severity: above 9.0 critical, 7.0
// high, 4.0 medium, above 0.1 low.
func securitySeverity(s secureauditv1.Severity) string {
	switch s {
	case secureauditv1.Severity_SEVERITY_CRITICAL:
		return "9.5"
	case secureauditv1.Severity_SEVERITY_HIGH:
		return "8.0"
	case secureauditv1.Severity_SEVERITY_MEDIUM:
		return "5.5"
	case secureauditv1.Severity_SEVERITY_LOW:
		return "3.0"
	}
	return "0.5"
}

// ruleName turns a title into a PascalCase SARIF rule name.
func ruleName(title string) string {
	var b strings.Builder
	for w := range strings.FieldsFuncSeq(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func listOr(values []string, empty string) string {
	if len(values) == 0 {
		return empty
	}
	return strings.Join(values, ", ")
}

// mdText escapes text for SARIF's Markdown help, as the report does.
func mdText(s string) string { return md(s) }

// ChokeRuleID is the SARIF rule of choke-point results.
const ChokeRuleID = "PATH-CHOKE"

func sarifChokeRule() sarifRule {
	text := "Removing this binding alone closes the proven escalation paths to cluster-admin listed as related locations (their subjects have no other proven path). The result's remediation property holds the command that removes it; its message says what the removal costs."
	return sarifRule{
		ID:                   ChokeRuleID,
		Name:                 "EscalationChokePoint",
		ShortDescription:     sarifText{Text: "binding whose removal closes escalation paths"},
		FullDescription:      sarifText{Text: text},
		Help:                 sarifHelp{Text: text, Markdown: mdText(text)},
		DefaultConfiguration: sarifRuleConfig{Level: "error"},
		Properties: sarifRuleProperty{
			Tags:             []string{"security", "rbac", "CIS-5.1.1", "CIS-5.1.8"},
			SecuritySeverity: securitySeverity(secureauditv1.Severity_SEVERITY_CRITICAL),
			Precision:        "very-high",
		},
	}
}

// sarifChoke returns one result per choke point, at its binding, with the
// paths it closes as related locations (each at the binding of the path's
// first step), first in the log.
//
// Against a previous audit, a choke point is new when a path it closes is
// new, updated when one changed, and unchanged otherwise.
func sarifChoke(r *secureauditv1.Report, findings []*secureauditv1.Finding, state map[string]string) []sarifResult {
	byID := map[string]*secureauditv1.Finding{}
	for _, f := range findings {
		byID[f.GetId()] = f
	}
	var out []sarifResult
	for _, cp := range r.GetChokePoints() {
		var related []sarifRelated
		for _, id := range cp.GetFindingIds() {
			f, ok := byID[id]
			if !ok {
				continue
			}
			at := sarifLocationFor(r.GetCluster(), f)
			related = append(related, sarifRelated{
				ID:               len(related),
				PhysicalLocation: at.PhysicalLocation,
				LogicalLocations: at.LogicalLocations,
				Message:          sarifText{Text: fmt.Sprintf("closes the path of %s (finding %s)", subjectText(f.GetSubject()), id)},
			})
		}
		if len(related) == 0 {
			continue
		}
		var costs []string
		for _, c := range cp.GetCosts() {
			caps := "no capability of note"
			if len(c.GetCapabilities()) > 0 {
				caps = strings.Join(c.GetCapabilities(), ", ")
			}
			costs = append(costs, subjectText(c.GetSubject())+" loses "+caps)
		}
		baseline := ""
		if r.GetHistory() != nil {
			baseline = "unchanged"
			for _, id := range cp.GetFindingIds() {
				switch state[id] {
				case "new":
					baseline = "new"
				case "updated":
					if baseline != "new" {
						baseline = "updated"
					}
				}
			}
		}
		binding := bindingText(cp.GetBinding())
		out = append(out, sarifResult{
			BaselineState: baseline,
			RuleID:        ChokeRuleID,
			Level:         "error",
			Message: sarifText{Text: fmt.Sprintf("Removing %s (%s) closes %d of %d proven escalation paths to cluster-admin. Cost: %s.",
				binding, roleText(cp.GetRole()), len(related), cp.GetTotalPaths(), listOr(costs, "no subject of the binding loses a capability of note"))},
			Locations:           []sarifLocation{sarifLocationFor(r.GetCluster(), &secureauditv1.Finding{Binding: cp.GetBinding()})},
			PartialFingerprints: map[string]string{FingerprintKey: "choke/" + bindingKeyText(cp.GetBinding())},
			RelatedLocations:    related,
			Properties: sarifResultProps{
				Severity:    severityText(secureauditv1.Severity_SEVERITY_CRITICAL),
				Action:      ActionRevoke,
				Subject:     binding,
				Controls:    []string{"CIS-5.1.1", "CIS-5.1.8"},
				Remediation: cp.GetCommand(),
			},
		})
	}
	return out
}

// bindingKeyText identifies a binding in a fingerprint.
func bindingKeyText(b *secureauditv1.BindingRef) string {
	ns := b.GetNamespace()
	if ns == "" {
		ns = "_cluster"
	}
	return ns + "/" + b.GetKind().String() + "/" + b.GetName()
}
