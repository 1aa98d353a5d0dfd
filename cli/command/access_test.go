package command

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAccessCommands(t *testing.T) {
	cluster := filepath.Join("..", "..", "examples", "cluster")
	dir := filepath.Join("..", "..", "examples", "directory.json")
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
		// With the directory, the grants through Azure on AKS: the
		// namespace-scoped RBAC Writer assignment counts in payments only;
		// the admin group, the Contributor on the resource group and the
		// custom runCommand role (local accounts enabled) everywhere.
		{"who-can with Azure", []string{"who-can", "create", "pods/exec", "-n", "payments", "--snapshot", cluster, "--directory", dir}, []string{
			"User            carol.ops@fabrikamcorp.onmicrosoft.com    Azure role assignment /subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/providers/Microsoft.Authorization/roleAssignments/0c7d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f -> Azure role Azure Kubernetes Service Cluster Admin Role",
			// PIM: Marco's eligible assignment, listed as eligible.
			"User            marco.rossi@fabrikamcorp.onmicrosoft.com  eligible Azure role assignment (PIM, activation needed) ",
			"/roleEligibilityScheduleInstances/3b9d4f1e-6c2a-4e85-9a7d-0f1e2c3b4a59 -> Azure role Azure Kubernetes Service Cluster Admin Role",
			"User            nina.berg@fabrikamcorp.onmicrosoft.com    Azure role assignment ",
			"(namespace payments) -> Azure role Azure Kubernetes Service RBAC Writer",
			"User            tom.weber@fabrikamcorp.onmicrosoft.com    Azure role assignment ",
			"-> Azure role Fabrikam AKS Support Operator",
			"Group           2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25      AKS admin group 2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25 -> cluster-admin",
			"Group           e97a7122-b22b-4cca-9229-80bd3b8f5453      Azure role assignment /subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod/providers/Microsoft.Authorization/roleAssignments/4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8 -> Azure role Contributor",
		}, nil},
		{"can-i through an eligible assignment", []string{"can-i", "--as", "marco.rossi@fabrikamcorp.onmicrosoft.com", "delete", "nodes", "--snapshot", cluster, "--directory", dir},
			[]string{"no\n", "  once activated, via eligible Azure role assignment (PIM, activation needed) "}, []string{"yes"}},
		{"who-can with Azure, other namespace", []string{"who-can", "create", "pods/exec", "-n", "web", "--snapshot", cluster, "--directory", dir},
			[]string{"AKS admin group"}, []string{"nina.berg"}},
		{"who-can without the directory", []string{"who-can", "create", "pods/exec", "-n", "payments", "--snapshot", cluster},
			[]string{"RoleBinding payments/payments-admins"}, []string{"Azure role", "AKS admin group"}},
		{"can-i through a namespace-scoped assignment", []string{"can-i", "--as", "nina.berg@fabrikamcorp.onmicrosoft.com", "create", "pods/exec", "-n", "payments", "--snapshot", cluster, "--directory", dir},
			[]string{"yes", "(namespace payments) -> Azure role Azure Kubernetes Service RBAC Writer"}, nil},
		{"can-i outside its namespace", []string{"can-i", "--as", "nina.berg@fabrikamcorp.onmicrosoft.com", "create", "pods/exec", "-n", "web", "--snapshot", cluster, "--directory", dir},
			[]string{"no"}, []string{"yes"}},
		{"can-i as an admin group member", []string{"can-i", "--as", "dana.kowalski@fabrikamcorp.onmicrosoft.com", "--as-group", "2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25", "delete", "nodes", "--snapshot", cluster, "--directory", dir},
			[]string{"yes", "via AKS admin group 2f8c5b71-0a4e-4d39-8b6f-e1c7a3d90f25 -> cluster-admin"}, nil},
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

// TestAccessWithDenyAssignments: who-can and can-i --directory leave out a
// route a deny assignment in the directory file blocks: Everyone denied
// listClusterAdminCredential and runCommand at the resource group, the
// platform-ops group excluded, removes Tom's and Marco's (eligible)
// credential routes and keeps the group's, Carol's (a member of the
// excluded group, so excluded too) and the data-action and admin-group
// ones.
func TestAccessWithDenyAssignments(t *testing.T) {
	cluster := filepath.Join("..", "..", "examples", "cluster")
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "directory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var snap map[string]any
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatal(err)
	}
	rg := "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-aks-fabrikam-prod"
	snap["denyAssignments"] = []any{map[string]any{
		"id": rg + "/providers/Microsoft.Authorization/denyAssignments/7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "name": "aks-guard stack", "scope": rg,
		"permissions":         []any{map[string]any{"actions": []any{"Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", "Microsoft.ContainerService/managedClusters/runCommand/action"}}},
		"principalIds":        []any{"00000000-0000-0000-0000-000000000000"},
		"excludePrincipalIds": []any{"e97a7122-b22b-4cca-9229-80bd3b8f5453"},
	}}
	out, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "directory.json")
	if err := os.WriteFile(dir, out, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		var out, errOut bytes.Buffer
		root := New(&out, &errOut)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	got := run("who-can", "create", "pods/exec", "-n", "payments", "--snapshot", cluster, "--directory", dir)
	for _, w := range []string{"nina.berg@", "AKS admin group", "Azure role Contributor", "carol.ops@"} {
		if !strings.Contains(got, w) {
			t.Errorf("who-can lacks %q:\n%s", w, got)
		}
	}
	for _, n := range []string{"marco.rossi@", "tom.weber@"} {
		if strings.Contains(got, n) {
			t.Errorf("who-can lists %q, whose route the deny assignment blocks:\n%s", n, got)
		}
	}
	if got := run("can-i", "--as", "tom.weber@fabrikamcorp.onmicrosoft.com", "delete", "nodes", "--snapshot", cluster, "--directory", dir); !strings.HasPrefix(got, "no") {
		t.Errorf("can-i as Tom = %q, want no", got)
	}
}
