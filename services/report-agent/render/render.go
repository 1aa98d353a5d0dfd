// Package render turns an audit Report into the documents its readers
// receive: Markdown and HTML for a GRC reviewer (both from one view of the
// report, so they say the same), and for machines report.json, SARIF 2.1.0
// for code scanning, OSCAL assessment results for GRC tools and the access
// review as CSV. Every function is pure: the same report gives the same
// bytes.
package render

import (
	"bytes"
	"encoding/json"
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
// is re-indented (json.Indent drops the insignificant whitespace it finds)
// to be byte-for-byte deterministic.
func JSON(r *secureauditv1.Report) ([]byte, error) {
	raw, err := protojson.MarshalOptions{}.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("marshal report: %w", err)
	}
	var out bytes.Buffer
	out.Grow(2 * len(raw)) // indentation about doubles a report's size
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent report JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
