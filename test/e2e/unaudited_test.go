package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanOversizedObject scans the example cluster with one more
// ClusterRole that the API server accepts but that is past the snapshot's
// memory limits (a rule with 5,000 verbs): the audit succeeds, the report
// names the object in an RBAC-050 finding and says its RBAC data is
// incomplete, and everything else is judged as before.
func TestScanOversizedObject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(env.root, "examples", "cluster"))); err != nil {
		t.Fatal(err)
	}
	verbs := make([]string, 5000)
	for i := range verbs {
		verbs[i] = fmt.Sprintf("verb%d", i)
	}
	verbs[0] = "*"
	objects := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": "hidden-admin"},
			"rules":    []any{map[string]any{"verbs": verbs, "apiGroups": []string{"*"}, "resources": []string{"*"}}}},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
			"metadata": map[string]any{"name": "hidden-admin"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "hidden-admin"},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}}},
	}}
	data, err := json.Marshal(objects)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oversized.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := scan(t, "--snapshot", dir, "--out", out, "--format", "json,md")
	if code != 0 {
		t.Fatalf("one oversized object failed the audit: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	if !report.GetSnapshotPartial() || report.GetUnauditedCount() != 1 {
		t.Errorf("snapshotPartial = %v, unauditedCount = %d, want true and 1", report.GetSnapshotPartial(), report.GetUnauditedCount())
	}
	if u := report.GetUnauditedObjects(); len(u) != 1 || u[0].GetKind() != "ClusterRole" || u[0].GetName() != "hidden-admin" ||
		!strings.HasPrefix(u[0].GetReason(), "object too large to audit: rules[0].verbs exceeds repeated.max_items") {
		t.Errorf("unauditedObjects = %v, want the ClusterRole hidden-admin, too large", u)
	}
	var named bool
	for _, f := range append(report.GetFindings(), report.GetInfrastructureFindings()...) {
		if f.GetRuleId() == "RBAC-050" && f.GetRole().GetName() == "hidden-admin" &&
			strings.Contains(f.GetDescription(), "Left out: ClusterRole hidden-admin (object too large to audit") {
			named = true
		}
	}
	if !named {
		t.Error("no RBAC-050 finding names the ClusterRole hidden-admin")
	}
	if n := len(report.GetFindings()); n < 10 {
		t.Errorf("only %d findings: the rest of the cluster was not judged", n)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "- **RBAC data:** INCOMPLETE; 1 object the API server accepted was too large to audit and left out (ClusterRole hidden-admin; RBAC-050)"; !strings.Contains(string(md), want) {
		t.Errorf("report.md lacks %q", want)
	}
}
