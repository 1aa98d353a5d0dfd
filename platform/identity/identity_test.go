package identity_test

import (
	"strings"
	"testing"

	"secureaudit.dev/platform/identity"
)

// TestConfigure: the trust domain, namespace and ID path of an adopter give
// every workload's ID, and IDs written with the defaults resolve to them.
func TestConfigure(t *testing.T) {
	t.Cleanup(func() {
		if err := identity.Configure(identity.TrustDomain, identity.Namespace, identity.IDPath); err != nil {
			t.Fatal(err)
		}
	})
	cases := []struct {
		domain, namespace, path string
		wantID, wantErr         string
	}{
		{"secureaudit.local", "secureaudit", "/ns/{namespace}/sa/{workload}", "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent", ""},
		{"prod.example.com", "security-tools", "", "spiffe://prod.example.com/ns/security-tools/sa/risk-agent", ""},
		{"prod.example.com", "security-tools", "/k8s/aks-west/{namespace}/{workload}", "spiffe://prod.example.com/k8s/aks-west/security-tools/risk-agent", ""},
		{"Not A Domain", "", "", "", "trust domain"},
		{"", "", "/workloads/fixed", "", "must contain {workload}"},
	}
	for _, tc := range cases {
		t.Run(tc.domain+tc.path, func(t *testing.T) {
			if err := identity.Configure(identity.TrustDomain, identity.Namespace, identity.IDPath); err != nil {
				t.Fatal(err)
			}
			err := identity.Configure(tc.domain, tc.namespace, tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Configure: %v, want %q", err, tc.wantErr)
				}
				if got := identity.ID(identity.RiskAgent).String(); got != "spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent" {
					t.Errorf("a refused configuration changed the ID to %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := identity.ID(identity.RiskAgent).String(); got != tc.wantID {
				t.Errorf("ID = %s, want %s", got, tc.wantID)
			}
			if got := identity.Resolve("spiffe://secureaudit.local/ns/secureaudit/sa/risk-agent"); got != tc.wantID {
				t.Errorf("Resolve = %s, want %s", got, tc.wantID)
			}
			if got := identity.Resolve("spiffe://other.example/ns/x/sa/y"); got != "spiffe://other.example/ns/x/sa/y" {
				t.Errorf("Resolve changed a foreign ID to %s", got)
			}
			if _, err := identity.Parse(tc.wantID); err != nil {
				t.Errorf("Parse(%s): %v", tc.wantID, err)
			}
		})
	}
}
