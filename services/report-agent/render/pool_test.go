package render

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// testPools are pools that split the lists differently: one element per
// batch, batches that do not divide the lists, more workers than cores,
// a window of one batch, and what Write uses.
var testPools = []pool{
	{workers: 2, batch: 1, window: 1},
	{workers: 3, batch: 7, window: 2},
	{workers: 4, batch: 64, window: 8},
	{workers: 2, batch: 500, window: 3},
	defaultPool(),
}

// A document rendered with the findings encoded by a pool of workers has
// exactly the bytes of the one encoded one finding at a time, for lists
// shorter than a batch, as long as one, and thousands of findings long.
func TestPoolWritesTheSequentialBytes(t *testing.T) {
	for _, n := range []int{0, 1, 7, 64, 3000} {
		r := largeReport(t, n)
		for _, format := range pooledFormats {
			var want bytes.Buffer
			if err := writeWith(&want, format, r, sequential); err != nil {
				t.Fatalf("%s, %d findings, sequential: %v", format, n, err)
			}
			for _, p := range testPools {
				w := &watchWriter{}
				if err := writeWith(w, format, r, p); err != nil {
					t.Fatalf("%s, %d findings, %+v: %v", format, n, p, err)
				}
				if !bytes.Equal(w.buf.Bytes(), want.Bytes()) {
					at := firstDifference(w.buf.Bytes(), want.Bytes())
					t.Errorf("%s, %d findings, %+v: %d bytes differ from the sequential %d bytes at byte %d:\n got %q\nwant %q",
						format, n, p, w.buf.Len(), want.Len(), at, around(w.buf.Bytes(), at), around(want.Bytes(), at))
				}
				// With thousands of findings the workers ran: some of the
				// document was written while they were running.
				if n == 3000 && w.sawWorkers == 0 {
					t.Errorf("%s, %d findings, %+v: no worker ran while the document was written", format, n, p)
				}
				if running := runningEncoders.Load(); running != 0 {
					t.Fatalf("%s, %d findings, %+v: %d encoding workers still running after the document was written", format, n, p, running)
				}
			}
		}
	}
}

// The report-agent's own findings: the pool writes the bytes of the
// golden report.json, SARIF and OSCAL of every test report.
func TestPoolWritesTheTestReports(t *testing.T) {
	for _, r := range testReports(t) {
		for _, format := range pooledFormats {
			var want bytes.Buffer
			if err := writeWith(&want, format, r, sequential); err != nil {
				t.Fatal(err)
			}
			for _, p := range testPools {
				var got bytes.Buffer
				if err := writeWith(&got, format, r, p); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("%s of report %s, %+v: differs from the sequential document", format, r.GetAuditId(), p)
				}
			}
		}
	}
}

// When the writer fails, the error is returned, nothing more is written,
// the workers stop encoding (the batches in flight at most are encoded)
// and have all ended when writeList returns.
func TestPoolStopsWhenTheWriterFails(t *testing.T) {
	broken := errors.New("stream closed")
	for _, p := range testPools {
		for _, after := range []int{0, 1, 5} {
			const n = 20000
			var encoded atomic.Int64
			w := &failingWriter{writes: after, err: broken}
			in := &indenter{w: w}
			in.write([]byte(`{"list":[`))
			err := p.writeList(in, "list", n, countingEncoder(&encoded, -1))
			if !errors.Is(err, broken) {
				t.Fatalf("%+v, failing after %d writes: got %v, want the writer's error", p, after, err)
			}
			if running := runningEncoders.Load(); running != 0 {
				t.Fatalf("%+v: %d encoding workers still running after writeList returned", p, running)
			}
			if w.after != 0 {
				t.Errorf("%+v: %d writes after the writer failed", p, w.after)
			}
			// Each write, the failing one too, took at most flushAt bytes
			// of elements of at least elementPad bytes and one batch; the
			// window is what was encoded ahead of them.
			perWrite := flushAt/elementPad + 1 + p.batch
			if limit := int64((after+1)*perWrite + p.window*p.batch); encoded.Load() > limit {
				t.Errorf("%+v, failing after %d writes: %d of %d elements encoded, want at most %d", p, after, encoded.Load(), n, limit)
			}
		}
	}
}

// An element that cannot be encoded ends the list with its error, the
// first in the list's order when several fail, whichever worker meets it
// first; the workers have ended when writeList returns.
func TestPoolReturnsTheFirstEncodingError(t *testing.T) {
	for _, p := range append([]pool{sequential}, testPools...) {
		var encoded atomic.Int64
		var out bytes.Buffer
		in := &indenter{w: &out}
		in.write([]byte(`{"list":[`))
		err := p.writeList(in, "list", 5000, countingEncoder(&encoded, 1234, 4321, 77))
		if err == nil || err.Error() != "element 77 cannot be encoded" {
			t.Errorf("%+v: got %v, want element 77's error", p, err)
		}
		if running := runningEncoders.Load(); running != 0 {
			t.Fatalf("%+v: %d encoding workers still running after writeList returned", p, running)
		}
	}
}

// report.json with a finding protojson refuses (a string that is not
// UTF-8) in the middle of thousands: the error names the finding, as the
// sequential writer's does.
func TestWriteJSONFindingError(t *testing.T) {
	r := largeReport(t, 3000)
	bad := r.GetFindings()[1500]
	bad.Title = "not \xff UTF-8"
	var want bytes.Buffer
	wantErr := writeReportJSON(&want, r, sequential)
	if wantErr == nil || !strings.Contains(wantErr.Error(), bad.GetId()) {
		t.Fatalf("sequential: got %v, want an error naming finding %s", wantErr, bad.GetId())
	}
	for _, p := range testPools {
		var got bytes.Buffer
		err := writeReportJSON(&got, r, p)
		if err == nil || err.Error() != wantErr.Error() {
			t.Errorf("%+v: got %v, want %v", p, err, wantErr)
		}
		if running := runningEncoders.Load(); running != 0 {
			t.Fatalf("%+v: %d encoding workers still running after WriteJSON returned", p, running)
		}
	}
}

// elementPad is the least length of countingEncoder's elements.
const elementPad = 1000

// countingEncoder encodes element i as {"i":i,"s":"..."} with a string of
// elementPad bytes and more, its length and escapes varying, counting the
// elements encoded, and fails on the elements in fail.
func countingEncoder(encoded *atomic.Int64, fail ...int) func() encoder {
	return func() encoder {
		var buf []byte
		return func(path string, i int) ([]byte, error) {
			encoded.Add(1)
			for _, f := range fail {
				if i == f {
					return nil, fmt.Errorf("element %d cannot be encoded", i)
				}
			}
			buf = append(buf[:0], `{"i":`...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, `,"s":"`...)
			buf = append(buf, strings.Repeat("x", elementPad)...)
			buf = append(buf, strings.Repeat(`a\"`, i%13)...)
			buf = append(buf, `"}`...)
			return buf, nil
		}
	}
}

// watchWriter keeps what is written, and notes whether encoding workers
// were running during a write.
type watchWriter struct {
	buf        bytes.Buffer
	sawWorkers int64
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.sawWorkers = max(w.sawWorkers, runningEncoders.Load())
	return w.buf.Write(p)
}

// failingWriter accepts writes writes, then fails each one with err,
// counting the writes after the first failure.
type failingWriter struct {
	writes, after int
	failed        bool
	err           error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.failed {
		w.after++
		return 0, w.err
	}
	if w.writes == 0 {
		w.failed = true
		return 0, w.err
	}
	w.writes--
	return len(p), nil
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func around(b []byte, at int) []byte {
	return b[max(0, at-40):min(len(b), at+40)]
}

// testReports are the tests' hand-built reports.
func testReports(t testing.TB) []*secureauditv1.Report {
	return []*secureauditv1.Report{
		sampleReport(), sampleFindings(), emptyReport(), pathsReport(t), aksReport(), campaignReport(),
		acceptedReport(), grantReport(true), grantReport(false), actionsReport(), withPath(),
	}
}

// TestPoolPanicIsAnError: an encoder that panics in a worker fails the
// list with an error naming the panic, and the process goes on (the
// worker's panic does not escape it).
func TestPoolPanicIsAnError(t *testing.T) {
	for _, p := range testPools {
		var out bytes.Buffer
		in := &indenter{w: &out}
		in.write([]byte(`{"list":[`))
		err := p.writeList(in, "list", 5000, func() encoder {
			return func(_ string, i int) ([]byte, error) {
				if i == 2500 {
					panic("a bug")
				}
				return []byte(`{}`), nil
			}
		})
		if err == nil || !strings.Contains(err.Error(), "panic: a bug") {
			t.Errorf("%+v: got %v, want an error naming the panic", p, err)
		}
		if running := runningEncoders.Load(); running != 0 {
			t.Fatalf("%+v: %d encoding workers still running after writeList returned", p, running)
		}
	}
}

// TestPoolBuffersStayBounded: a list whose first elements are large (1 MiB
// each) and the rest small gives the batch buffers no more room than
// maxPooledBuffer at once, and the pool keeps none larger for later.
func TestPoolBuffersStayBounded(t *testing.T) {
	large := []byte(`"` + strings.Repeat("x", 1<<20) + `"`)
	p := pool{workers: 2, batch: 128, window: 4}
	var out bytes.Buffer
	in := &indenter{w: &out}
	in.write([]byte(`{"list":[`))
	err := p.writeList(in, "list", 1024, func() encoder {
		return func(_ string, i int) ([]byte, error) {
			if i%128 == 0 {
				return large, nil
			}
			return []byte(`1`), nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 64 {
		buf, ok := batchBuffers.Get().(*[]byte)
		if !ok {
			break
		}
		if cap(*buf) > maxPooledBuffer {
			t.Fatalf("a pooled buffer of %d bytes, more than %d", cap(*buf), maxPooledBuffer)
		}
	}
}
