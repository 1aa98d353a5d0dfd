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
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

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

// WriteJSON writes report.json (see JSON) to w. The findings, nearly all
// of the document, are marshalled one at a time into the indenter, in the
// places the protojson of the whole report puts them: the report is
// marshalled with one placeholder in each list of findings, and each
// placeholder's list is replaced by the findings as it passes.
func WriteJSON(w io.Writer, r *secureauditv1.Report) error {
	shell := &secureauditv1.Report{}
	lists := map[string][]*secureauditv1.Finding{}
	counts := map[string]int{}
	fields := r.ProtoReflect().Descriptor().Fields()
	r.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Number() {
		case fields.ByName("findings").Number(), fields.ByName("infrastructure_findings").Number():
			return true
		}
		shell.ProtoReflect().Set(fd, v) // shares the value: the shell is only read
		return true
	})
	if len(r.GetFindings()) > 0 {
		shell.Findings = []*secureauditv1.Finding{{}}
		lists["findings"] = r.GetFindings()
		counts["findings"] = len(r.GetFindings())
	}
	if len(r.GetInfrastructureFindings()) > 0 {
		shell.InfrastructureFindings = []*secureauditv1.Finding{{}}
		lists["infrastructureFindings"] = r.GetInfrastructureFindings()
		counts["infrastructureFindings"] = len(r.GetInfrastructureFindings())
	}
	raw, err := protojson.MarshalOptions{}.Marshal(shell)
	if err != nil {
		return fmt.Errorf("marshal report: %w", err)
	}
	b := bufio.NewWriterSize(w, 64<<10)
	in := &indenter{w: b}
	var item []byte
	err = spliceLists(raw, counts, in.write, func(path string, i int) error {
		f := lists[path][i]
		item, err = protojson.MarshalOptions{}.MarshalAppend(item[:0], f)
		if err != nil {
			return fmt.Errorf("marshal finding %s: %w", f.GetId(), err)
		}
		in.write(item)
		return nil
	})
	if err != nil {
		return err
	}
	b.WriteByte('\n')
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write report JSON: %w", err)
	}
	return nil
}

// spliceLists passes the compact JSON src to out, except that each array
// whose path (the keys leading to it, array positions left out, joined by
// "/") is in lists is replaced by that many elements, element i written
// by item(path, i), separated by commas. The array in src is a placeholder
// and is skipped.
func spliceLists(src []byte, lists map[string]int, out func([]byte), item func(path string, i int) error) error {
	var stack []string
	path, key, last := "", "", ""
	start := 0
	inString, escaped := false, false
	stringStart := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				last = string(src[stringStart+1 : i])
			}
			continue
		}
		switch c {
		case '"':
			inString, stringStart = true, i
		case ':':
			key = last
		case ',':
			key = ""
		case '{', '[':
			child := path
			if key != "" {
				child = strings.TrimPrefix(path+"/"+key, "/")
			}
			if n, ok := lists[child]; ok && c == '[' && key != "" {
				out(src[start : i+1])
				for e := range n {
					if e > 0 {
						out([]byte{','})
					}
					if err := item(child, e); err != nil {
						return err
					}
				}
				// Skip the placeholder; the array's closing bracket is
				// written with what follows.
				end, err := closing(src, i)
				if err != nil {
					return err
				}
				i, start, key = end, end, ""
				continue
			}
			stack = append(stack, path)
			path, key = child, ""
		case '}', ']':
			if len(stack) > 0 {
				path, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			key = ""
		}
	}
	out(src[start:])
	return nil
}

// closing returns the index of the bracket closing the array or object
// opened at src[open].
func closing(src []byte, open int) (int, error) {
	depth := 0
	inString, escaped := false, false
	for i := open; i < len(src); i++ {
		c := src[i]
		if inString {
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
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, errors.New("unterminated JSON array")
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
	in := &indenter{w: w}
	in.write(src[:end])
	w.Write(src[end:])
}

// indenter is indentJSON fed a document in pieces: the pieces may split it
// anywhere, and the output is as if the whole were indented at once.
type indenter struct {
	w                             *bufio.Writer
	depth                         int
	inString, escaped, needIndent bool
}

func (in *indenter) newline() {
	in.w.WriteByte('\n')
	for range in.depth {
		in.w.WriteString("  ")
	}
}

func (in *indenter) write(src []byte) {
	w := in.w
	for _, c := range src {
		if in.inString {
			w.WriteByte(c)
			switch {
			case in.escaped:
				in.escaped = false
			case c == '\\':
				in.escaped = true
			case c == '"':
				in.inString = false
			}
			continue
		}
		if isSpace(c) {
			continue
		}
		if in.needIndent && c != '}' && c != ']' {
			in.needIndent = false
			in.depth++
			in.newline()
		}
		switch c {
		case '"':
			in.inString = true
			w.WriteByte(c)
		case '{', '[':
			in.needIndent = true
			w.WriteByte(c)
		case ',':
			w.WriteByte(c)
			in.newline()
		case ':':
			w.WriteString(": ")
		case '}', ']':
			if in.needIndent {
				in.needIndent = false
			} else {
				in.depth--
				in.newline()
			}
			w.WriteByte(c)
		default:
			w.WriteByte(c)
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
