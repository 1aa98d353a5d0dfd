package render

import (
	"bufio"
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
	w := bufio.NewWriter(&got)
	indentJSON(w, src)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Errorf("indentJSON(%q)\n got %q\nwant %q", src, got.Bytes(), want.Bytes())
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
		func(path string, i int) error {
			got.WriteString(path + "#" + string(rune('0'+i)))
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
