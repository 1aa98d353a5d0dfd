package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestIndentMatchesJSONIndent checks indent against encoding/json's Indent,
// whose bytes report.json had before: protojson of the sample, the empty
// report and a report with strings full of escapes, quotes, brackets and
// non-ASCII text, then random JSON documents written with random
// whitespace (a seeded generator, the seed logged).
func TestIndentMatchesJSONIndent(t *testing.T) {
	tricky := sampleReport()
	tricky.Cluster = "c-{[\"quoted\"]},: \\\\ back\\slash"
	for _, f := range tricky.GetFindings() {
		f.Description = "line one\nline \"two\"\t{[,:]}\\ \u00e9\u4e16\U0001F600 \u2028 </script>"
		f.Remediation = `kubectl delete rolebinding "a,b" -n x  # {"k": [1, 2]}`
	}
	docs := map[string][]byte{}
	for name, r := range map[string]*secureauditv1.Report{"sample": sampleReport(), "empty": emptyReport(), "tricky": tricky} {
		for _, multiline := range []bool{false, true} {
			raw, err := protojson.MarshalOptions{Multiline: multiline}.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			docs[fmt.Sprintf("%s multiline=%v", name, multiline)] = raw
		}
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 500 {
		var b strings.Builder
		randomJSON(rng, &b, 0)
		docs[fmt.Sprintf("random %d", i)] = []byte(b.String())
	}
	for name, raw := range docs {
		var want bytes.Buffer
		if err := json.Indent(&want, raw, "", "  "); err != nil {
			t.Fatalf("%s: json.Indent: %v\n%s", name, err, raw)
		}
		if got := indent(nil, raw); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: indent differs from json.Indent\ninput: %s\ngot:\n%s\nwant:\n%s", name, raw, got, want.Bytes())
		}
	}
}

// randomJSON writes a random JSON value with random insignificant
// whitespace around its tokens (none after the document).
func randomJSON(rng *rand.Rand, b *strings.Builder, depth int) {
	space := func() {
		for range rng.IntN(3) {
			b.WriteByte(" \t\n\r"[rng.IntN(4)])
		}
	}
	str := func() {
		var s strings.Builder
		for range rng.IntN(8) {
			s.WriteString([]string{"a", " ", "\"", "\\", "{", "}", "[", "]", ",", ":", "\n", "\u00e9", "\U0001F600", "\x01", "/"}[rng.IntN(15)])
		}
		q, _ := json.Marshal(s.String())
		b.Write(q)
	}
	space()
	kind := rng.IntN(7)
	if depth > 4 {
		kind = 2 + rng.IntN(5)
	}
	switch kind {
	case 0, 1:
		open, closing := "{", "}"
		if kind == 1 {
			open, closing = "[", "]"
		}
		b.WriteString(open)
		n := rng.IntN(4)
		for i := range n {
			if i > 0 {
				space()
				b.WriteString(",")
			}
			if kind == 0 {
				space()
				str()
				space()
				b.WriteString(":")
			}
			randomJSON(rng, b, depth+1)
		}
		space()
		b.WriteString(closing)
	case 2:
		str()
	case 3:
		fmt.Fprintf(b, "%d", rng.IntN(2000)-1000)
	case 4:
		fmt.Fprintf(b, "%g", rng.NormFloat64()*1e6)
	case 5:
		b.WriteString([]string{"true", "false", "null"}[rng.IntN(3)])
	case 6:
		b.WriteString("-1.5e-7")
	}
	if depth > 0 { // json.Indent keeps whitespace after the document; protojson writes none
		space()
	}
}

// BenchmarkIndent compares indent with json.Indent on the protojson of a
// report with 8,000 findings (the size of the benchmark cluster's).
func BenchmarkIndent(b *testing.B) {
	r := sampleReport()
	for len(r.Findings) < 8000 {
		r.Findings = append(r.Findings, r.Findings...)
	}
	raw, err := protojson.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("indent", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		out := make([]byte, 0, 2*len(raw))
		for b.Loop() {
			out = indent(out[:0], raw)
		}
	})
	b.Run("json.Indent", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			if err := json.Indent(&out, raw, "", "  "); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJSON renders report.json of a report with 8,000 findings.
func BenchmarkJSON(b *testing.B) {
	r := sampleReport()
	for len(r.Findings) < 8000 {
		r.Findings = append(r.Findings, r.Findings...)
	}
	for b.Loop() {
		if _, err := JSON(r); err != nil {
			b.Fatal(err)
		}
	}
}
