package command

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestAccessCommands(t *testing.T) {
	cluster := filepath.Join("..", "..", "examples", "cluster")
	tests := []struct {
		name string
		args []string
		want []string // lines, in order
		not  []string
	}{
		{"who-can", []string{"who-can", "get", "secrets", "-n", "kube-system", "--snapshot", cluster}, []string{
			"ServiceAccount  data/backup-operator",
			"ServiceAccount  ci/github-deployer",
			"system:masters",
		}, nil},
		{"can-i no", []string{"can-i", "--as", "system:serviceaccount:kube-system:default", "get", "secrets", "-n", "kube-system", "--snapshot", cluster},
			[]string{"no"}, []string{"yes"}},
		{"can-i yes", []string{"can-i", "--as", "system:serviceaccount:ci:github-deployer", "delete", "nodes", "--snapshot", cluster},
			[]string{"yes", "via ClusterRoleBinding github-deployer-cluster-admin -> ClusterRole cluster-admin"}, nil},
		{"can-i short name and version.group", []string{"can-i", "--as", "system:serviceaccount:ci:github-deployer", "delete", "ing.v1.networking.k8s.io", "-n", "x", "--snapshot", cluster},
			[]string{"yes"}, nil},
		{"can-i --subresource", []string{"can-i", "--as", "system:serviceaccount:ci:github-deployer", "create", "po", "--subresource", "exec", "-n", "x", "--snapshot", cluster},
			[]string{"yes"}, nil},
		{"can-i list", []string{"can-i", "--as-group", "system:authenticated", "--list", "--snapshot", cluster},
			[]string{"create  selfsubjectaccessreviews.authorization.k8s.io", "get     /version"}, []string{"secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := New(&out, &errOut)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil {
				t.Fatalf("%v: %v\n%s", tt.args, err, errOut.String())
			}
			got := out.String()
			rest := got
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, got)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("output has %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestCanIRequiresSubject(t *testing.T) {
	var out, errOut bytes.Buffer
	root := New(&out, &errOut)
	root.SetArgs([]string{"can-i", "get", "pods", "--snapshot", filepath.Join("..", "..", "examples", "cluster")})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--as") {
		t.Errorf("err = %v, want one asking for --as", err)
	}
}

func TestAccessResourceErrors(t *testing.T) {
	cluster := filepath.Join("..", "..", "examples", "cluster")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"near match", []string{"who-can", "get", "secret", "--snapshot", cluster}, ""},
		{"unknown", []string{"who-can", "get", "ingres", "--snapshot", cluster}, "did you mean ingresses.networking.k8s.io"},
		{"unknown group", []string{"who-can", "get", "widgets.example.com", "--snapshot", cluster}, "unknown resource"},
		{"kubectl's TYPE/NAME", []string{"who-can", "get", "pods/web", "--snapshot", cluster}, `no subresource "web"`},
		{"subresource twice", []string{"who-can", "get", "pods/log", "--subresource", "log", "--snapshot", cluster}, "give the subresource once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			root := New(&out, &errOut)
			root.SetArgs(tt.args)
			err := root.Execute()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("%v: %v", tt.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v: err = %v, want one containing %q", tt.args, err, tt.want)
			}
		})
	}
}
