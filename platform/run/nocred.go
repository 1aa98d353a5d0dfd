package run

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ServiceAccountTokenFile is where Kubernetes mounts a Pod's token.
const ServiceAccountTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// CredentialCheck is a workload's credential self-check as presented to the
// orchestrator (SOC 2 CC6.2).
type CredentialCheck struct {
	// Outcome is pass, violation or not-applicable.
	Outcome string `json:"outcome"`
	Summary string `json:"summary"`
	// Findings name what was found, such as a mounted token.
	Findings []string `json:"findings,omitempty"`
}

// JSON is the compact form carried in the response header.
func (c CredentialCheck) JSON() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// NoKubernetesToken proves a workload holds no Kubernetes credential: no
// ServiceAccount token mounted, no KUBECONFIG, no ~/.kube/config. lookupEnv
// and exists are os.LookupEnv and a file test, injected for tests.
func NoKubernetesToken(lookupEnv func(string) (string, bool), exists func(string) bool) CredentialCheck {
	var found []string
	if exists(ServiceAccountTokenFile) {
		found = append(found, "a ServiceAccount token is mounted at "+ServiceAccountTokenFile)
	}
	if v, ok := lookupEnv("KUBECONFIG"); ok && v != "" {
		found = append(found, "KUBECONFIG is set")
	}
	if home, ok := lookupEnv("HOME"); ok && home != "" && exists(filepath.Join(home, ".kube", "config")) {
		found = append(found, "a kubeconfig exists at $HOME/.kube/config")
	}
	if len(found) > 0 {
		return CredentialCheck{Outcome: "violation", Summary: "VIOLATION: the workload declares no Kubernetes credential but holds one: " + strings.Join(found, "; "), Findings: found}
	}
	return CredentialCheck{Outcome: "pass", Summary: "no Kubernetes credential: no ServiceAccount token mounted, no KUBECONFIG, no ~/.kube/config"}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
