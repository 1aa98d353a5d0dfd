package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/rbac-agent/collect"
)

// TestNamesWithControlCharactersAreRefused: an object whose name, or a
// name inside it (a subject, a role reference), holds a control character
// (NUL, newline, escape) is left out of the snapshot and listed as
// unaudited with the characters escaped, so the raw name reaches no report
// and no remediation command; clean objects are kept.
func TestNamesWithControlCharactersAreRefused(t *testing.T) {
	const snapshot = `{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "evil\u0000\n# kubectl delete ns prod"}, "rules": []},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "clean"}, "rules": []},
 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "binds-clean"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "clean"},
  "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory\u001b[2K"}]},
 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ok", "annotations": {"note": "two\nlines are fine in an annotation"}}}
]}`
	path := filepath.Join(t.TempDir(), "snap.json")
	if err := os.WriteFile(path, []byte(snapshot), 0o600); err != nil {
		t.Fatal(err)
	}
	snap, err := collect.NewFiles(path, "test", newValidator(t)).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range snap.ClusterRoles {
		kept = append(kept, "ClusterRole "+r.GetMeta().GetName())
	}
	for _, b := range snap.ClusterRoleBindings {
		kept = append(kept, "ClusterRoleBinding "+b.GetMeta().GetName())
	}
	for _, n := range snap.Namespaces {
		kept = append(kept, "Namespace "+n.GetMeta().GetName())
	}
	if diff := cmp.Diff([]string{"ClusterRole clean", "Namespace ok"}, kept); diff != "" {
		t.Errorf("kept objects (-want +got):\n%s", diff)
	}
	want := []*secureauditv1.UnauditedObject{
		{Kind: "ClusterRole", Name: `evil\x00\n# kubectl delete ns prod`, Reason: "refused: name contains the control character U+0000"},
		{Kind: "ClusterRoleBinding", Name: "binds-clean", Reason: "refused: name contains the control character U+001B"},
	}
	if diff := cmp.Diff(want, snap.Unaudited, protocmp.Transform()); diff != "" {
		t.Errorf("unaudited (-want +got):\n%s", diff)
	}
	if snap.UnauditedCount != 2 {
		t.Errorf("unaudited count %d, want 2", snap.UnauditedCount)
	}
}
