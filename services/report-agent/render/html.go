package render

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate is parsed once per HTML call: templates are cheap to parse,
// and a package-level parsed template would be a global.
func htmlTemplate() (*template.Template, error) {
	return template.New("report").Funcs(template.FuncMap{
		"lower":    strings.ToLower,
		"join":     strings.Join,
		"runnable": Runnable,
		"pathLine": pathLine,
		"apiGroups": func(groups []string) string {
			if len(groups) == 0 {
				return "none"
			}
			out := make([]string, len(groups))
			for i, g := range groups {
				out[i] = g
				if g == "" {
					out[i] = `""`
				}
			}
			return strings.Join(out, ", ")
		},
		"list": func(values []string, empty string) string {
			if len(values) == 0 {
				return empty
			}
			return strings.Join(values, ", ")
		},
		"meaning":        func(a Action) string { return actionMeaning[a] },
		"review":         func(v view, f *findingView) *reviewItem { return reviewFor(v, f) },
		"plural":         func(n int, one, many string) string { return plural(n, one, many) },
		"signoff":        func() []string { return SignOff },
		"slug":           func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "-")) },
		"builtin":        func() string { return builtinMeaning },
		"subjectMissing": func() string { return subjectMissingText },
		"inc":            func(i int) int { return i + 1 },
		"int":            func(n uint32) int { return int(n) },
		"pair":           func(v view, f *findingView) findingPair { return findingPair{V: v, F: f} },
		"returned": func(v view, f *findingView) *acceptedView {
			if a, ok := v.returnedFor(f); ok {
				return &a
			}
			return nil
		},
	}).Parse(htmlSource)
}

// findingPair hands the finding template its finding and the whole view.
type findingPair struct {
	V view
	F *findingView
}

// HTML renders the report as one self-contained HTML file: the same content
// and order as the Markdown, with inline CSS and script only (a Content
// Security Policy forbids every request the page could make), severity
// filters, collapsible findings, a small diagram of each finding's access
// path and an access-review checklist. html/template escapes every value
// for its context, so hostile names stay text.
func HTML(r *secureauditv1.Report) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteHTML writes the HTML report (see HTML) to w as the template runs.
func WriteHTML(w io.Writer, r *secureauditv1.Report) error {
	t, err := htmlTemplate()
	if err != nil {
		return fmt.Errorf("parse HTML template: %w", err)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	if err := t.Execute(b, newView(r)); err != nil {
		return fmt.Errorf("render HTML: %w", err)
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write HTML: %w", err)
	}
	return nil
}
