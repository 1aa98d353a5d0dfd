// Package render turns an audit Report into the documents its readers
// receive: Markdown and HTML for a GRC reviewer (both from one view of the
// report, so they say the same), and for machines report.json, SARIF 2.1.0
// for code scanning, OSCAL assessment results for GRC tools and the access
// review as CSV. Every function is pure: the same report gives the same
// bytes.
package render

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

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
	var b bytes.Buffer
	if err := Write(&b, format, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write renders r in format into w as the document is produced: the
// Markdown, HTML and CSV writers hold the report's view and no more of the
// document than a buffer; JSON, SARIF and OSCAL hold their compact JSON
// (about half the document) and indent it into w. It wraps ErrUnsupported
// for a format it does not know, and returns the first error writing to w.
func Write(w io.Writer, format secureauditv1.ReportFormat, r *secureauditv1.Report) error {
	switch format {
	case secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN:
		return WriteMarkdown(w, r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_JSON:
		return WriteJSON(w, r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_HTML:
		return WriteHTML(w, r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_SARIF:
		return WriteSARIF(w, r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL:
		return WriteOSCAL(w, r)
	case secureauditv1.ReportFormat_REPORT_FORMAT_CSV:
		return WriteCSV(w, r)
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, format)
}

// JSON renders report.json: the protojson of r with lowerCamelCase field
// names and unpopulated fields omitted, indented with two spaces and ended
// by a newline. protojson varies its whitespace on purpose, so the output
// is re-indented (as json.Indent would, dropping the insignificant
// whitespace) to be byte-for-byte deterministic.
func JSON(r *secureauditv1.Report) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSON writes report.json (see JSON) to w.
func WriteJSON(w io.Writer, r *secureauditv1.Report) error {
	raw, err := protojson.MarshalOptions{}.Marshal(r)
	if err != nil {
		return fmt.Errorf("marshal report: %w", err)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	indentJSON(b, raw)
	b.WriteByte('\n')
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write report JSON: %w", err)
	}
	return nil
}

// indentJSON writes the valid JSON src to w indented by two spaces, byte
// for byte as json.Indent(dst, src, "", "  ") would, without holding a
// second copy of the document: whitespace between tokens is dropped, the
// trailing whitespace kept, and empty objects and arrays stay on one line.
// Errors are left in w (a bufio.Writer keeps the first).
func indentJSON(w *bufio.Writer, src []byte) {
	end := len(src)
	for end > 0 && isSpace(src[end-1]) {
		end--
	}
	tail := src[end:]
	src = src[:end]
	newline := func(depth int) {
		w.WriteByte('\n')
		for range depth {
			w.WriteString("  ")
		}
	}
	depth := 0
	inString, escaped, needIndent := false, false, false
	for _, c := range src {
		if inString {
			w.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if isSpace(c) {
			continue
		}
		if needIndent && c != '}' && c != ']' {
			needIndent = false
			depth++
			newline(depth)
		}
		switch c {
		case '"':
			inString = true
			w.WriteByte(c)
		case '{', '[':
			needIndent = true
			w.WriteByte(c)
		case ',':
			w.WriteByte(c)
			newline(depth)
		case ':':
			w.WriteString(": ")
		case '}', ']':
			if needIndent {
				needIndent = false
			} else {
				depth--
				newline(depth)
			}
			w.WriteByte(c)
		default:
			w.WriteByte(c)
		}
	}
	w.Write(tail)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
