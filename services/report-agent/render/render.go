// Package render turns an audit Report into the documents its readers
// receive: Markdown and HTML for a GRC reviewer (both from one view of the
// report, so they say the same), and for machines report.json, SARIF 2.1.0
// for code scanning, OSCAL assessment results for GRC tools and the access
// review as CSV. Every function is pure: the same report gives the same
// bytes.
package render

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// ErrUnsupported is returned for a format this package does not render.
var ErrUnsupported = errors.New("unsupported report format")

// Supported reports whether Document renders format.
func Supported(format secureauditv1.ReportFormat) bool {
	switch format {
	case secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_JSON,
		secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF,
		secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, secureauditv1.ReportFormat_REPORT_FORMAT_CSV:
		return true
	}
	return false
}

// Document renders r in format. It wraps ErrUnsupported for a format it
// does not know.
func Document(format secureauditv1.ReportFormat, r *secureauditv1.Report) ([]byte, error) {
	switch format {
	case secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN:
		return Markdown(r), nil
	case secureauditv1.ReportFormat_REPORT_FORMAT_JSON:
		return JSON(r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_HTML:
		return HTML(r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_SARIF:
		return SARIF(r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL:
		return OSCAL(r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_CSV:
		return CSV(r)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, format)
}

// JSON renders report.json: the protojson of r with lowerCamelCase field
// names and unpopulated fields omitted, indented with two spaces and ended
// by a newline. protojson varies its whitespace on purpose, so the output
// is re-indented (indent drops the insignificant whitespace it finds) to be
// byte-for-byte deterministic: the bytes json.Indent(dst, raw, "", "  ")
// writes.
func JSON(r *secureauditv1.Report) ([]byte, error) {
	raw, err := protojson.MarshalOptions{}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal report: %w", err)
	}
	out := make([]byte, 0, 2*len(raw)) // indentation about doubles a report's size
	out = indent(out, raw)
	return append(out, '\n'), nil
}

// indent appends src, a valid JSON document, to dst indented with two
// spaces per level, as json.Indent(dst, src, "", "  ") writes it: no
// whitespace kept outside strings, a newline and the indentation after
// each opening bracket and comma and before each closing bracket, ": "
// after a name, empty objects and arrays as {} and []. It does not check
// the JSON (protojson writes it): it is json.Indent without the
// validation's scanner, which took a third of rendering report.json of a
// 10,000-object cluster (22 MB).
func indent(dst, src []byte) []byte {
	depth := 0
	pending := false // an opening bracket whose newline waits for its first item
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if pending && c != '}' && c != ']' {
			pending = false
			depth++
			dst = newline(dst, depth)
		}
		switch c {
		case '"':
			// Copy the string through its closing quote, escapes as they are.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			dst = append(dst, src[i:j]...)
			i = j - 1
		case '{', '[':
			pending = true
			dst = append(dst, c)
		case ',':
			dst = newline(append(dst, c), depth)
		case ':':
			dst = append(dst, c, ' ')
		case '}', ']':
			if pending {
				pending = false
			} else {
				depth--
				dst = newline(dst, depth)
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// newline appends a newline and two spaces per level of depth.
func newline(dst []byte, depth int) []byte {
	dst = append(dst, '\n')
	for range depth {
		dst = append(dst, ' ', ' ')
	}
	return dst
}
