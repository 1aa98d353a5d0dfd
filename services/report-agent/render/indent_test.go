package render

import (
	"bytes"
	"encoding/json"
	"testing"
)

// indentJSON must write what json.Indent writes, since report.json, SARIF
// and OSCAL were indented by it before they were streamed.
func TestIndentJSONMatchesJSONIndent(t *testing.T) {
	for _, src := range indentCases {
		checkIndent(t, []byte(src))
	}
}

var indentCases = []string{
	`{}`,
	`[]`,
	`{"a":[],"b":{},"c":[{}],"d":[[],[1,2]]}`,
	` { "a" : 1 , "b":[ true,false ,null ] } `,
	`{"s":"a \"quoted\" \\ string, with: {braces} and [brackets]","n":-1.5e3}`,
	"{\"x\":\"tab\\tnew\\nline \\u00e9\"}\n",
	`"just a string"`,
	`12`,
	`[{"nested":{"deeper":[{"deepest":[]}]}}]`,
}

func checkIndent(t *testing.T, src []byte) {
	t.Helper()
	var want bytes.Buffer
	if err := json.Indent(&want, src, "", "  "); err != nil {
		return // only valid JSON is indented
	}
	var got bytes.Buffer
	if err := indentJSON(&got, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("indentJSON(%q)\n got %q\nwant %q", src, got.Bytes(), want.Bytes())
	}
	// The indenter fed the document in two pieces, split anywhere (in a
	// string, between a backslash and what it escapes), writes the same.
	end := len(src)
	for end > 0 && isSpace(src[end-1]) {
		end--
	}
	for k := range min(end, 200) + 1 {
		in := &indenter{}
		in.write(src[:k])
		in.write(src[k:end])
		in.out = append(in.out, src[end:]...)
		if !bytes.Equal(in.out, want.Bytes()) {
			t.Errorf("indenter fed %q then %q\n got %q\nwant %q", src[:k], src[k:end], in.out, want.Bytes())
		}
	}
}

func FuzzIndentJSON(f *testing.F) {
	for _, src := range indentCases {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) { checkIndent(t, src) })
}

// spliceLists replaces only the arrays at the paths named, not arrays of
// the same key elsewhere nor strings that look like them.
func TestSpliceLists(t *testing.T) {
	src := `{"name":"runs/results","results":[0],"runs":[{"x":{"results":[1]},"results":[{"a":"],["}],"tail":[]}]}`
	var got bytes.Buffer
	err := spliceLists([]byte(src), map[string]int{"runs/results": 3}, func(b []byte) { got.Write(b) },
		func(path string, n int) error {
			for i := range n {
				if i > 0 {
					got.WriteByte(',')
				}
				got.WriteString(path + "#" + string(rune('0'+i)))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"runs/results","results":[0],"runs":[{"x":{"results":[1]},"results":[runs/results#0,runs/results#1,runs/results#2],"tail":[]}]}`
	if got.String() != want {
		t.Errorf("got  %s\nwant %s", got.String(), want)
	}
}
