package run

import (
	"strings"
	"testing"
)

func TestNoKubernetesToken(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		files   []string
		outcome string
		want    string
	}{
		{"clean", map[string]string{"HOME": "/home/a"}, nil, "pass", "no Kubernetes credential"},
		{"token mounted", nil, []string{ServiceAccountTokenFile}, "violation", "ServiceAccount token is mounted"},
		{"KUBECONFIG", map[string]string{"KUBECONFIG": "/tmp/k"}, nil, "violation", "KUBECONFIG is set"},
		{"home kubeconfig", map[string]string{"HOME": "/home/a"}, []string{"/home/a/.kube/config"}, "violation", "$HOME/.kube/config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			exists := func(p string) bool {
				for _, f := range tc.files {
					if f == p {
						return true
					}
				}
				return false
			}
			got := NoKubernetesToken(lookup, exists)
			if got.Outcome != tc.outcome || !strings.Contains(got.Summary, tc.want) {
				t.Errorf("got %+v, want outcome %s mentioning %q", got, tc.outcome, tc.want)
			}
		})
	}
}
