// Package render turns an audit Report into the documents its readers
// receive: Markdown and HTML for a GRC reviewer (both from one view of the
// report, so they say the same), and for machines report.json, SARIF 2.1.0
// for code scanning, OSCAL assessment results for GRC tools and the access
// review as CSV. Every function is pure: the same report gives the same
// bytes.
package render

import (
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
// document than a buffer; JSON, SARIF and OSCAL hold the compact JSON of
// the document without its large lists, and the elements of those lists in
// a few batches being encoded on every core (see pool). It wraps
// ErrUnsupported for a format it does not know, and returns the first
// error writing to w.
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
// of the document, are marshalled and indented in the places the protojson
// of the whole report puts them, on every core (see pool): the report is
// marshalled with one placeholder in each list of findings, and each
// placeholder's list is replaced by the findings as it passes.
func WriteJSON(w io.Writer, r *secureauditv1.Report) error {
	return writeReportJSON(w, r, defaultPool())
}

// writeReportJSON is WriteJSON with the findings encoded by p.
func writeReportJSON(w io.Writer, r *secureauditv1.Report, p pool) error {
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
	// Each worker marshals into its own buffer; protojson itself keeps no
	// state between calls, and the findings are only read.
	newEncoder := func() encoder {
		var item []byte
		return func(path string, i int) ([]byte, error) {
			f := lists[path][i]
			var err error
			item, err = protojson.MarshalOptions{}.MarshalAppend(item[:0], f)
			if err != nil {
				return nil, fmt.Errorf("marshal finding %s: %w", f.GetId(), err)
			}
			return item, nil
		}
	}
	in := &indenter{w: w}
	err = spliceLists(raw, counts, in.write, func(path string, n int) error {
		return p.writeList(in, path, n, newEncoder)
	})
	if err == nil {
		in.out = append(in.out, '\n')
		in.flush()
	}
	if in.err != nil {
		return fmt.Errorf("write report JSON: %w", in.err)
	}
	return err
}

// spliceLists passes the compact JSON src to out, except that each array
// whose path (the keys leading to it, array positions left out, joined by
// "/") is in lists is replaced by that many elements, which list(path, n)
// writes, separated by commas, after out has received everything before
// them up to the array's opening bracket. The array in src is a
// placeholder and is skipped.
func spliceLists(src []byte, lists map[string]int, out func([]byte), list func(path string, n int) error) error {
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
				if err := list(child, n); err != nil {
					return err
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
// It returns the first error writing to w.
func indentJSON(w io.Writer, src []byte) error {
	end := len(src)
	for end > 0 && isSpace(src[end-1]) {
		end--
	}
	in := &indenter{w: w}
	in.write(src[:end])
	in.out = append(in.out, src[end:]...)
	in.flush()
	return in.err
}

// flushAt is how many bytes of output an indenter with a writer holds
// before it passes them on.
const flushAt = 64 << 10

// indenter is indentJSON fed a document in pieces: the pieces may split it
// anywhere, and the output is as if the whole were indented at once. The
// output collects in out; with a writer w, it is passed to w whenever
// flushAt bytes have collected (and by flush), and the first error writing
// is kept in err, after which nothing more is written. Without a writer,
// out grows: an encoding worker's indenter holds one batch of elements.
type indenter struct {
	out                           []byte
	w                             io.Writer
	err                           error
	depth                         int
	inString, escaped, needIndent bool
}

// spaces is the indentation newline copies from, 32 levels at a time.
const spaces = "                                                                "

// newline appends a line break and the indentation of the current depth.
func (in *indenter) newline(out []byte) []byte {
	out = append(out, '\n')
	for n := in.depth * 2; n > 0; {
		k := min(n, len(spaces))
		out = append(out, spaces[:k]...)
		n -= k
	}
	return out
}

// write indents src onto the output, passing the output to w (when the
// indenter has one) every flushAt bytes of src, so that a large src is not
// held twice.
func (in *indenter) write(src []byte) {
	if in.w == nil {
		in.indent(src)
		return
	}
	for len(src) > 0 {
		n := min(len(src), flushAt)
		in.indent(src[:n])
		src = src[n:]
		if len(in.out) >= flushAt {
			in.flush()
		}
	}
}

// flush passes the output collected to w, unless an earlier write failed.
func (in *indenter) flush() {
	if in.err == nil && len(in.out) > 0 {
		_, in.err = in.w.Write(in.out)
	}
	in.out = in.out[:0]
}

// open makes the indenter ready for the first element of the array just
// opened (the last byte written was its '['), written already indented at
// depth (see pool.writeList): it goes to the next depth on a new line, as
// the element's first byte would have made it.
func (in *indenter) open() {
	if in.needIndent {
		in.needIndent = false
		in.depth++
		in.out = in.newline(in.out)
	}
}

// writeIndented passes b, output already indented at the indenter's depth
// and leaving it there (whole elements of an array, see pool.writeList),
// to w after the output collected before it.
func (in *indenter) writeIndented(b []byte) {
	if len(in.out)+len(b) <= flushAt {
		in.out = append(in.out, b...)
		return
	}
	in.flush()
	if in.err == nil {
		_, in.err = in.w.Write(b)
	}
}

// indent appends the indentation of src to out. Inside strings it copies
// the runs between quotes and backslashes whole.
func (in *indenter) indent(src []byte) {
	out := in.out
	for i := 0; i < len(src); i++ {
		c := src[i]
		if in.inString {
			if in.escaped {
				in.escaped = false
				out = append(out, c)
				continue
			}
			j := i
			for j < len(src) && src[j] != '"' && src[j] != '\\' {
				j++
			}
			out = append(out, src[i:j]...)
			if j == len(src) {
				break
			}
			i = j
			out = append(out, src[j])
			if src[j] == '\\' {
				in.escaped = true
			} else {
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
			out = in.newline(out)
		}
		switch c {
		case '"':
			in.inString = true
			out = append(out, c)
		case '{', '[':
			in.needIndent = true
			out = append(out, c)
		case ',':
			out = append(out, c)
			out = in.newline(out)
		case ':':
			out = append(out, ':', ' ')
		case '}', ']':
			if in.needIndent {
				in.needIndent = false
			} else {
				in.depth--
				out = in.newline(out)
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	in.out = out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
