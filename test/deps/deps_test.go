// Package deps checks domain isolation at build time: each service's
// dependency graph holds only the SDKs of its own domain.
package deps

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"secureaudit.dev/test/harness"
)

var (
	kubernetes = []string{"k8s.io/client-go", "k8s.io/api/", "k8s.io/apimachinery"}
	microsoft  = []string{"github.com/microsoftgraph/", "github.com/microsoft/kiota", "github.com/Azure/azure-sdk-for-go"}
	llm        = []string{"github.com/openai/", "github.com/anthropics/"}
	// databases are the drivers and migrations of the orchestrator's
	// storage: no other service touches a database.
	databases = []string{"github.com/jackc/pgx", "github.com/pressly/goose", "modernc.org/sqlite"}
	// clients are the Kubernetes client libraries (API types are not).
	clients = []string{"k8s.io/client-go"}
)

func TestDependencyIsolation(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		module    string
		forbidden [][]string
		// services lists the service packages the module may import.
		services []string
	}{
		{"services/rbac-agent", [][]string{microsoft, llm, databases}, nil},
		{"services/entra-agent", [][]string{kubernetes, llm, databases}, nil},
		{"services/risk-agent", [][]string{kubernetes, microsoft, databases}, nil},
		{"services/report-agent", [][]string{kubernetes, microsoft, llm, databases}, nil},
		{"services/orchestrator", [][]string{kubernetes, microsoft, llm}, nil},
		{"platform", [][]string{kubernetes, microsoft, llm, databases}, nil},
		// The CLI answers who-can and can-i from a snapshot: it reads files
		// with the rbac-agent's collect (k8s.io/api and apimachinery only) and
		// decides with the risk-agent's access engine (resources read with its
		// discovery table), but holds no client.
		{"cli", [][]string{clients, microsoft, llm}, []string{
			"secureaudit.dev/services/rbac-agent/collect",
			"secureaudit.dev/services/risk-agent/access",
			"secureaudit.dev/services/risk-agent/discovery",
			"secureaudit.dev/services/risk-agent/snapshot",
			"secureaudit.dev/services/orchestrator/history",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.module, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-test", "./...")
			cmd.Dir = filepath.Join(root, tc.module)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			pkgs := strings.Fields(string(out))
			if len(pkgs) < 10 {
				t.Fatalf("go list returned %d packages; the check would prove nothing", len(pkgs))
			}
			for _, p := range pkgs {
				for _, group := range tc.forbidden {
					for _, prefix := range group {
						if strings.HasPrefix(p, prefix) {
							t.Errorf("%s depends on %s", tc.module, p)
						}
					}
				}
				if strings.HasPrefix(p, "secureaudit.dev/services/") && !strings.HasPrefix(p, "secureaudit.dev/"+tc.module) && !slices.Contains(tc.services, p) {
					t.Errorf("%s imports another service: %s", tc.module, p)
				}
			}
		})
	}
}

// TestRBACAgentIsTheOnlyKubernetesClient is the positive control: the check
// above would see client-go if it were there.
func TestRBACAgentIsTheOnlyKubernetesClient(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Dir = filepath.Join(root, "services/rbac-agent")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "k8s.io/client-go/kubernetes\n") {
		t.Error("rbac-agent does not depend on k8s.io/client-go/kubernetes")
	}
}

// TestTestHarnessesStayInTests: the orchestrator's binary links neither the
// PostgreSQL test harness nor the storage test helpers, while its tests do
// (the positive control).
func TestTestHarnessesStayInTests(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	harnesses := []string{"secureaudit.dev/platform/pgtest", "secureaudit.dev/services/orchestrator/storage/storagetest"}
	for _, withTests := range []bool{false, true} {
		args := []string{"list", "-deps", "."} // the binary
		if withTests {
			args = []string{"list", "-deps", "-test", "./..."}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = filepath.Join(root, "services/orchestrator")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		pkgs := strings.Fields(string(out))
		for _, h := range harnesses {
			if got := slices.Contains(pkgs, h); got != withTests {
				t.Errorf("go %s: %s listed = %v, want %v", strings.Join(args, " "), h, got, withTests)
			}
		}
	}
}
