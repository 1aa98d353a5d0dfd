package rulesdoc_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"secureaudit.dev/services/risk-agent/rulesdoc"
)

var update = flag.Bool("update", false, "rewrite docs/rules.md from the catalogue")

// TestRulesReference fails when docs/rules.md is not what the catalogue
// generates.
func TestRulesReference(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "rules.md")
	got := rulesdoc.Markdown()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Error("docs/rules.md is stale: run go test ./rulesdoc -update in services/risk-agent")
	}
}
