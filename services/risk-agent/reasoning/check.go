package reasoning

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/inject"
)

// allowedHosts are the only hosts (and their subdomains) model text may link to.
var allowedHosts = []string{"kubernetes.io", "learn.microsoft.com", "cisecurity.org", "owasp.org", "nist.gov"}

// allowedKubectl are the kubectl subcommands model text may show.
var allowedKubectl = map[string]bool{
	"get": true, "describe": true, "auth": true, "delete": true, "edit": true,
	"annotate": true, "label": true, "create": true,
}

var (
	urlPattern     = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s)\]>"'` + "`" + `]+`)
	kubectlPattern = regexp.MustCompile(`\bkubectl\s+([a-z][a-z-]*)`)
	// shellPattern finds a command other than kubectl where a command
	// starts: at the start of a line, after a backtick, a prompt or a
	// shell operator.
	shellPattern = regexp.MustCompile("(?i)(?:^|[\\n`;|&(]|\\$\\s)\\s*(curl|wget|bash|sh|zsh|powershell|pwsh|iex|nc|ncat|netcat|python3?|perl|ruby|eval|ssh|scp|sudo|chmod|chown|rm|dd|mkfifo|base64|invoke-webrequest|invoke-expression|iwr|az|aws|gcloud)\\b")
)

// check parses and validates a model answer for batch b. It returns the
// answer, or the anomaly kind and the reason it was discarded.
func (r *Reasoner) check(text, canary string, b batch) (*secureauditv1.ModelAnswer, secureauditv1.AnomalyKind, string) {
	discarded := secureauditv1.AnomalyKind_ANOMALY_KIND_DISCARDED_ANSWER
	if strings.Contains(text, canary) || strings.Contains(text, strings.TrimPrefix(canary, "CANARY-")) {
		return nil, secureauditv1.AnomalyKind_ANOMALY_KIND_CANARY_LEAK, "the answer contains the system prompt's canary"
	}
	raw := extractJSON(text)
	answer := &secureauditv1.ModelAnswer{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal([]byte(raw), answer); err != nil {
		return nil, discarded, "the answer does not match the schema: " + bounded(err.Error(), 200)
	}
	if err := r.validator.Validate(answer); err != nil {
		return nil, discarded, "the answer breaks the schema's rules: " + bounded(err.Error(), 200)
	}
	if b.summary {
		if len(answer.GetFindings()) > 0 || len(answer.GetAccess()) > 0 || answer.GetExecutiveSummary() == "" {
			return nil, discarded, "a summary answer must hold only the executive summary"
		}
	} else {
		if answer.GetExecutiveSummary() != "" {
			return nil, discarded, "the answer holds an executive summary nobody asked for"
		}
		known := map[string]bool{}
		for _, f := range b.findings {
			known[f.GetId()] = true
		}
		seen := map[string]bool{}
		for _, n := range answer.GetFindings() {
			id := n.GetFindingId()
			if !known[id] {
				return nil, discarded, "the answer cites unknown finding ID " + strconv.Quote(id)
			}
			if seen[id] {
				return nil, discarded, "the answer cites finding " + id + " twice"
			}
			seen[id] = true
		}
		subjects := map[string]bool{}
		for _, s := range b.subjects {
			subjects[s.ID] = true
		}
		for _, j := range answer.GetAccess() {
			id := j.GetSubjectId()
			if !subjects[id] {
				return nil, discarded, "the answer cites unknown subject ID " + strconv.Quote(id)
			}
			if seen[id] {
				return nil, discarded, "the answer cites subject " + id + " twice"
			}
			seen[id] = true
		}
	}
	for _, t := range texts(answer) {
		if reason := checkText(t); reason != "" {
			return nil, discarded, reason
		}
	}
	return answer, 0, ""
}

func texts(a *secureauditv1.ModelAnswer) []string {
	out := []string{a.GetExecutiveSummary()}
	for _, n := range a.GetFindings() {
		out = append(out, n.GetExplanation(), n.GetFirstStep())
	}
	for _, j := range a.GetAccess() {
		out = append(out, j.GetReason())
	}
	return out
}

// checkText returns why a piece of model text may not be shown, or "".
func checkText(t string) string {
	for _, h := range inject.Scan(t) {
		switch h.Category {
		case inject.RoleMarker, inject.ToolBlock, inject.HiddenText, inject.Exfiltration:
			return "the answer contains " + h.Category.String() + " (" + h.Reason + ")"
		}
	}
	for _, u := range urlPattern.FindAllString(t, -1) {
		if !allowedURL(u) {
			return "the answer links outside the allowlist: " + strconv.QuoteToASCII(bounded(u, 200))
		}
	}
	for _, m := range kubectlPattern.FindAllStringSubmatch(t, -1) {
		if !allowedKubectl[m[1]] {
			return "the answer shows a kubectl command outside the allowlist: kubectl " + m[1]
		}
	}
	if m := shellPattern.FindStringSubmatch(t); m != nil {
		return "the answer shows a shell command outside the allowlist: " + strings.ToLower(m[1])
	}
	return ""
}

func allowedURL(raw string) bool {
	if strings.HasPrefix(strings.ToLower(raw), "www.") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, h := range allowedHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// extractJSON strips a Markdown code fence and any text around the outermost
// JSON object.
func extractJSON(text string) string {
	start, end := strings.Index(text, "{"), strings.LastIndex(text, "}")
	if start < 0 || end < start {
		return text
	}
	return text[start : end+1]
}

// bounded cuts s to at most n characters (the contract's max_len counts
// characters), ending a cut text with "...".
func bounded(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-3, 0)]) + "..."
}

// excerpt is a bounded, ASCII-only rendering of model output for evidence.
func excerpt(s string, n int) string {
	return bounded(strconv.QuoteToASCII(s), n)
}
