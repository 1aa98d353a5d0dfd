package render

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// largeReport returns a report of n findings (about one in ten of them
// infrastructure findings) made from the findings of the tests' hand-built
// reports, each copy with its own ID and names, some fields dropped and
// strings that need escaping (quotes, backslashes, control characters,
// HTML, non-ASCII), so that the findings differ in size and shape as an
// audit's do. The same n always gives the same report.
func largeReport(t testing.TB, n int) *secureauditv1.Report {
	r := sampleFindings()
	var templates []*secureauditv1.Finding
	for _, from := range []*secureauditv1.Report{r, pathsReport(t), aksReport(), campaignReport(), acceptedReport(), grantReport(true)} {
		templates = append(templates, from.GetFindings()...)
		templates = append(templates, from.GetInfrastructureFindings()...)
	}
	odd := []string{"", "é", "\"quoted\"", `back\slash`, "tab\tnew\nline", "<script>&amp;", "\u2028", "日本語", hostile, "\x01"}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	r.Findings, r.InfrastructureFindings = nil, nil
	for i := range n {
		f := proto.Clone(templates[rng.IntN(len(templates))]).(*secureauditv1.Finding)
		f.Id = fmt.Sprintf("%016x", rng.Uint64())
		suffix := fmt.Sprintf("-%d%s", i, odd[rng.IntN(len(odd))])
		if s := f.GetSubject(); s != nil {
			s.Name += suffix
		}
		if b := f.GetBinding(); b != nil {
			b.Name += suffix
		}
		switch rng.IntN(4) {
		case 0:
			f.Description = ""
		case 1:
			f.Description += " " + odd[rng.IntN(len(odd))]
		case 2:
			f.MatchedRules = nil
		}
		if rng.IntN(10) == 0 {
			f.Infrastructure = true
			r.InfrastructureFindings = append(r.InfrastructureFindings, f)
			continue
		}
		f.Infrastructure = false
		r.Findings = append(r.Findings, f)
	}
	return r
}

// writeWith renders r in format (report.json, SARIF or OSCAL) with the
// large lists' elements encoded by p.
func writeWith(w io.Writer, format secureauditv1.ReportFormat, r *secureauditv1.Report, p pool) error {
	switch format {
	case secureauditv1.ReportFormat_REPORT_FORMAT_JSON:
		return writeReportJSON(w, r, p)
	case secureauditv1.ReportFormat_REPORT_FORMAT_SARIF:
		return writeSARIF(w, r, p)
	case secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL:
		return writeOSCAL(w, r, p)
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, format)
}

// pooledFormats are the formats whose large lists a pool encodes.
var pooledFormats = []secureauditv1.ReportFormat{
	secureauditv1.ReportFormat_REPORT_FORMAT_JSON,
	secureauditv1.ReportFormat_REPORT_FORMAT_SARIF,
	secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL,
}

// benchmarkWrite renders a report of 10,000 findings in format, as the
// report-agent does into its chunk writer (here one that counts), with the
// findings encoded on every core ("parallel", what Write does) and one at
// a time on the writing goroutine ("sequential", as before the pool).
func benchmarkWrite(b *testing.B, format secureauditv1.ReportFormat) {
	r := largeReport(b, 10000)
	for _, c := range []struct {
		name string
		p    pool
	}{{"parallel", defaultPool()}, {"sequential", sequential}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var size int64
			for b.Loop() {
				w := &countWriter{}
				if err := writeWith(w, format, r, c.p); err != nil {
					b.Fatal(err)
				}
				size = w.n
			}
			b.ReportMetric(float64(size), "doc-bytes")
		})
	}
}

// BenchmarkWriteJSON renders report.json for 10,000 findings.
func BenchmarkWriteJSON(b *testing.B) {
	benchmarkWrite(b, secureauditv1.ReportFormat_REPORT_FORMAT_JSON)
}

// BenchmarkWriteSARIF renders the SARIF log for 10,000 findings.
func BenchmarkWriteSARIF(b *testing.B) {
	benchmarkWrite(b, secureauditv1.ReportFormat_REPORT_FORMAT_SARIF)
}

// BenchmarkWriteOSCAL renders the OSCAL assessment results for 10,000
// findings.
func BenchmarkWriteOSCAL(b *testing.B) {
	benchmarkWrite(b, secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL)
}
