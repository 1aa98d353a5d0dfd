package collect_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// collectedAt is the fixed clock of every test snapshot.
var collectedAt = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return collectedAt }

func newValidator(t testing.TB) *validation.Validator {
	t.Helper()
	v, err := validation.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// whole returns the snapshot as one chunk, the form of the golden files.
func whole(s *collect.Snapshot) *secureauditv1.SnapshotChunk {
	return &secureauditv1.SnapshotChunk{
		Header:              s.Header,
		Namespaces:          s.Namespaces,
		Roles:               s.Roles,
		ClusterRoles:        s.ClusterRoles,
		RoleBindings:        s.RoleBindings,
		ClusterRoleBindings: s.ClusterRoleBindings,
		ServiceAccounts:     s.ServiceAccounts,
		Workloads:           s.Workloads,
		Trailer:             s.Trailer(),
	}
}

func TestFilesGolden(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name string
		path string
	}{
		{"single object YAML", "single.yaml"},
		{"single object JSON", "single.json"},
		{"kind List", "list.yaml"},
		{"multi-document YAML", "multidoc.yaml"},
		{"directory", "dir"},
		{"kubectl get all JSON with other kinds", "kubectl-get-all.json"},
		{"typed list without item kinds", "typed-list.json"},
		{"empty List", "empty-list.yaml"},
		{"projected token with automount off (Linkerd identity)", "linkerd-identity.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", "good", tt.path)
			snap, err := collect.NewFiles(path, "test", v, collect.WithClock(clock)).Load(context.Background())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := whole(snap)
			if err := v.Validate(got); err != nil {
				t.Errorf("snapshot breaks the contract: %v", err)
			}
			golden := filepath.Join("testdata", "golden", tt.path+".json")
			if *update {
				data, err := protojson.MarshalOptions{Multiline: true}.Marshal(got)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update): %v", err)
			}
			want := &secureauditv1.SnapshotChunk{}
			if err := protojson.Unmarshal(data, want); err != nil {
				t.Fatalf("parse %s: %v", golden, err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("snapshot differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestFilesSkipsOtherKindsUndecoded(t *testing.T) {
	// The Secrets in this file have data that is not base64 and a number
	// where bytes belong, the Service a string port and the Node a bad
	// quantity: decoding any of them would fail, so success shows that they
	// were read no further than their kind.
	path := filepath.Join("testdata", "good", "kubectl-get-all.json")
	snap, err := collect.NewFiles(path, "test", newValidator(t)).Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := map[string]uint32{"Secret": 2, "ConfigMap": 1, "Node": 1, "Service": 1, "Role.iam.cnrm.cloud.google.com": 1}
	if diff := cmp.Diff(want, snap.Trailer().GetSkipped()); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if got := len(snap.Workloads); got != 2 {
		t.Errorf("workloads = %d, want 2 (a ReplicaSet and a Pod)", got)
	}
}

func TestFilesBadInput(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		path string
		want []string // substrings of the error, besides the file name
	}{
		{"malformed.yaml", []string{"malformed YAML", "line 7"}},
		{"malformed-second-doc.yaml", []string{"document 2 (line 6)", "malformed YAML", "line 10"}},
		{"malformed.json", []string{"line 6, column 4", "malformed JSON"}},
		{"truncated.json", []string{"malformed JSON: unexpected end of file"}},
		{"not-k8s.yaml", []string{"not a Kubernetes object: no apiVersion and kind"}},
		{"no-kind.json", []string{"not a Kubernetes object: v1 without kind"}},
		{"scalar.yaml", []string{"not a Kubernetes object: a string, not a mapping"}},
		{"empty.yaml", []string{"no Kubernetes objects"}},
		{"comments-only.yaml", []string{"no Kubernetes objects"}},
		{"invalid-utf8.yaml", []string{"line 4, column 12: invalid UTF-8"}},
		{"utf16.yaml", []string{"UTF-16", "convert it to UTF-8"}},
		{"role-no-namespace.yaml", []string{"Role orphan: invalid: meta: a Role must have a namespace"}},
		{"rule-no-verbs.yaml", []string{"ClusterRole no-verbs: invalid: rules[0].verbs"}},
		{"unknown-subject.yaml", []string{"RoleBinding team-a/robots: subjects[0]: unknown subject kind \"Robot\""}},
		{"unknown-roleref.yaml", []string{"RoleBinding team-a/weird-ref: roleRef: unknown kind \"Policy\""}},
		{"crb-sa-no-namespace.yaml", []string{"ClusterRoleBinding ci-admin: invalid:", "ServiceAccount subject needs a namespace"}},
		{"crb-to-role.yaml", []string{"ClusterRoleBinding to-role: invalid:", "can only reference a ClusterRole"}},
		{"wrong-type.yaml", []string{"items[0]: Role team-a/typo: decode:"}},
		{"bad-sa-name.yaml", []string{"Pod team-a/web: invalid: service_account"}},
		{"duplicate", []string{"two.yaml: ServiceAccount team-a/app: duplicate object, also in " + filepath.Join("testdata", "bad", "duplicate", "one.yaml")}},
		{"no-files", []string{"no .yaml, .yml or .json files"}},
		{"does-not-exist.yaml", []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.path)
			snap, err := collect.NewFiles(path, "test", v).Load(context.Background())
			if err == nil {
				t.Fatalf("Load succeeded with %d namespaces, want an error", len(snap.Namespaces))
			}
			msg := err.Error()
			for _, want := range append([]string{path}, tt.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans lines", msg)
			}
		})
	}
}

func TestFilesPicksUpChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.yaml")
	write := func(name string) {
		t.Helper()
		data := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n"
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := collect.NewFiles(path, "test", newValidator(t))
	for _, name := range []string{"first", "second"} {
		write(name)
		snap, err := src.Load(context.Background())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if len(snap.Namespaces) != 1 || snap.Namespaces[0].GetMeta().GetName() != name {
			t.Errorf("namespaces = %v, want only %q", snap.Namespaces, name)
		}
	}
}

// Unchanged files are parsed once: a second load returns the same objects
// under a new header; a change, even to a file that breaks, is seen.
func TestFilesReusesUnchangedParse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.yaml")
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments\n"
	write(ns)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	src := collect.NewFiles(path, "test", newValidator(t), collect.WithClock(func() time.Time { now = now.Add(time.Hour); return now }))
	first, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Namespaces) != 1 || second.Namespaces[0] != first.Namespaces[0] {
		t.Error("unchanged files were parsed again")
	}
	if !second.Header.GetCollectedAt().AsTime().After(first.Header.GetCollectedAt().AsTime()) || first.Header == second.Header {
		t.Error("a reused parse kept the previous header's collection time")
	}
	write(ns + "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'unterminated\n")
	if _, err := src.Load(context.Background()); err == nil {
		t.Fatal("a broken file loaded from the previous parse")
	}
	write(ns)
	third, err := src.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if third.Namespaces[0] == first.Namespaces[0] {
		t.Error("after a failed load the old parse was reused without parsing")
	}
}

func TestSanitizeCluster(t *testing.T) {
	tests := []struct{ in, want string }{
		{"prod-westeurope", "prod-westeurope"},
		{"arn:aws:eks:eu-west-1:123456789012:cluster/prod", "arn-aws-eks-eu-west-1-123456789012-cluster-prod"},
		{"_kind cluster_", "kind-cluster"},
		{"...", "cluster"},
		{"", "cluster"},
		{strings.Repeat("a", 300), strings.Repeat("a", 253)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := collect.SanitizeCluster(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeCluster(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !collect.ValidCluster(got) {
				t.Errorf("SanitizeCluster(%q) = %q is not a valid cluster name", tt.in, got)
			}
		})
	}
}
