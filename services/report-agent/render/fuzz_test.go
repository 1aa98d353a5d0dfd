package render

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"buf.build/go/protovalidate"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/net/html"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// FuzzRender feeds arbitrary reports to every renderer, seeded with the
// reports of the other tests (encoded as protobuf, which the fuzzer mutates
// as bytes) and a name put wherever the seeds hold the hostile name of the
// other tests (the fuzzer mutates it as a string, so names that try to break
// out of a table, a link, an element or a CSV cell are explored directly). The documents are rendered side by side, as
// compose.Server does, so `go test -race` sees any renderer writing to the
// shared report. No renderer may panic, and every document is well formed:
// Markdown is UTF-8; report.json, SARIF and OSCAL are JSON, report.json
// reading back as the same report; the HTML parses with no element the
// template does not write, no event-handler attribute and exactly its one
// script, so no name from the cluster became markup; the CSV reads back
// with the header and one row per review item, each as wide as the header.
// A report that passes its protovalidate rules, as the orchestrator's do,
// also gives SARIF and OSCAL that validate against their schemas.
// `go test` runs the seeds; `go test -fuzz FuzzRender` explores.
func FuzzRender(f *testing.F) {
	for _, r := range []*secureauditv1.Report{sampleReport(), sampleFindings(), emptyReport(), withPath(), pathsReport(f), grantReport(true), grantReport(false)} {
		data, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range []string{hostile, "</script><script>alert(1)</script>", `" onmouseover="x`, "=HYPERLINK(\"http://x\")", "a\n| b | c |\n```", "\u202eevil"} {
			f.Add(data, name)
		}
	}
	tmpl, err := os.ReadFile("report.html.tmpl")
	if err != nil {
		f.Fatal(err)
	}
	tags := map[string]bool{}
	for _, m := range regexp.MustCompile(`<([a-z][a-z0-9]*)`).FindAllStringSubmatch(string(tmpl), -1) {
		tags[m[1]] = true
	}
	sarifSchema := compileSchema(f, "sarif-2.1.0-rtm.5.json")
	oscalSchema := compileSchema(f, "oscal-assessment-results-1.1.2-subset.json")
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	formats := []secureauditv1.ReportFormat{
		secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN, secureauditv1.ReportFormat_REPORT_FORMAT_JSON,
		secureauditv1.ReportFormat_REPORT_FORMAT_HTML, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF,
		secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, secureauditv1.ReportFormat_REPORT_FORMAT_CSV,
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		r := &secureauditv1.Report{}
		// Unknown fields are dropped: report.json has no place for them.
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, r); err != nil {
			return
		}
		if !utf8.ValidString(name) {
			return // proto3 strings are UTF-8: no report can hold it
		}
		replaceStrings(r.ProtoReflect(), hostile, name)
		// A hang is a failure too: the fuzzer has no time limit of its own.
		watchdog := time.AfterFunc(20*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic("rendering took over 20s:\n" + string(buf[:runtime.Stack(buf, true)]))
		})
		defer watchdog.Stop()
		docs := make(map[secureauditv1.ReportFormat][]byte, len(formats))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, format := range formats {
			wg.Go(func() {
				doc, err := Document(format, r)
				if err != nil {
					t.Errorf("%s: %v", format, err)
					return
				}
				mu.Lock()
				docs[format] = doc
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if md := docs[secureauditv1.ReportFormat_REPORT_FORMAT_MARKDOWN]; !utf8.Valid(md) {
			t.Errorf("Markdown is not UTF-8")
		}
		for _, format := range formats[3:5] {
			if !json.Valid(docs[format]) {
				t.Errorf("%s is not JSON", format)
			}
		}
		back := &secureauditv1.Report{}
		if err := protojson.Unmarshal(docs[secureauditv1.ReportFormat_REPORT_FORMAT_JSON], back); err != nil {
			t.Errorf("report.json does not read back: %v", err)
		} else if !proto.Equal(r, back) {
			t.Errorf("report.json reads back as a different report")
		}
		checkHTML(t, docs[secureauditv1.ReportFormat_REPORT_FORMAT_HTML], tags)
		rows, err := csv.NewReader(bytes.NewReader(docs[secureauditv1.ReportFormat_REPORT_FORMAT_CSV])).ReadAll()
		switch {
		case err != nil:
			t.Errorf("the CSV does not read back: %v", err)
		case len(rows) != 1+len(newView(r).Review):
			t.Errorf("the CSV has %d rows, want a header and %d review items", len(rows), len(newView(r).Review))
		}
		if v.Validate(r) != nil {
			return
		}
		for format, schema := range map[secureauditv1.ReportFormat]*jsonschema.Schema{
			secureauditv1.ReportFormat_REPORT_FORMAT_SARIF: sarifSchema, secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL: oscalSchema,
		} {
			if err := validate(t, schema, docs[format]); err != nil {
				t.Errorf("%s of a valid report does not validate against its schema: %v", format, err)
			}
		}
	})
}

// checkHTML parses doc as a browser would and requires that every element
// is one the template writes, that no element has an event-handler
// attribute and that there is exactly one script.
func checkHTML(t *testing.T, doc []byte, tags map[string]bool) {
	t.Helper()
	root, err := html.Parse(bytes.NewReader(doc))
	if err != nil {
		t.Errorf("the HTML does not parse: %v", err)
		return
	}
	scripts := 0
	for n := range root.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "script" {
			scripts++
		}
		if !tags[n.Data] {
			t.Errorf("the HTML holds a <%s> element the template does not write", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Errorf("<%s> has an event-handler attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
	if scripts != 1 {
		t.Errorf("the HTML has %d scripts, want the template's one", scripts)
	}
}

// replaceStrings replaces old with new in every string field of m, its
// lists, maps and nested messages.
func replaceStrings(m protoreflect.Message, old, new string) {
	value := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) (protoreflect.Value, bool) {
		switch fd.Kind() {
		case protoreflect.StringKind:
			return protoreflect.ValueOfString(strings.ReplaceAll(v.String(), old, new)), true
		case protoreflect.MessageKind, protoreflect.GroupKind:
			replaceStrings(v.Message(), old, new)
		}
		return v, false
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if nv, ok := value(fd, l.Get(i)); ok {
					l.Set(i, nv)
				}
			}
		case fd.IsMap():
			mp := v.Map()
			mp.Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if nv, ok := value(fd.MapValue(), mv); ok {
					mp.Set(k, nv)
				}
				return true
			})
		default:
			if nv, ok := value(fd, v); ok {
				m.Set(fd, nv)
			}
		}
		return true
	})
}
