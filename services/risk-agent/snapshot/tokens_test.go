package snapshot_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// TestTokens: every way a pod holds a token, the pod's automount setting
// winning over its ServiceAccount's, projections whatever automount says,
// and Secrets mounted by name only when named as a legacy token Secret of
// a ServiceAccount the namespace has.
func TestTokens(t *testing.T) {
	no, yes := false, true
	s := snapshot.Build([]*secureauditv1.SnapshotChunk{{
		ServiceAccounts: []*secureauditv1.ServiceAccount{
			{Meta: &secureauditv1.ObjectMeta{Name: "quiet", Namespace: "a"}, AutomountToken: &no},
			{Meta: &secureauditv1.ObjectMeta{Name: "app", Namespace: "a"}},
			{Meta: &secureauditv1.ObjectMeta{Name: "builder", Namespace: "a"}},
		},
	}}, nil)
	pod := func(sa string, automount *bool, projected []*secureauditv1.ProjectedToken, secrets ...string) *secureauditv1.Workload {
		return &secureauditv1.Workload{Meta: &secureauditv1.ObjectMeta{Name: "p", Namespace: "a"}, Kind: "Pod", ServiceAccount: sa,
			AutomountToken: automount, ProjectedTokens: projected, SecretVolumes: secrets}
	}
	kubeAPI := []*secureauditv1.ProjectedToken{{Volume: "kube-api-access", Path: "token", ExpirationSeconds: 3607}}
	tests := []struct {
		name string
		w    *secureauditv1.Workload
		want []snapshot.Token
		own  bool
	}{
		{"default automount", pod("app", nil, nil), []snapshot.Token{{Kind: snapshot.TokenAutomount, ServiceAccount: "app"}}, true},
		{"ServiceAccount off", pod("quiet", nil, nil), nil, false},
		{"pod on wins over ServiceAccount off", pod("quiet", &yes, nil), []snapshot.Token{{Kind: snapshot.TokenAutomount, ServiceAccount: "quiet"}}, true},
		{"pod off wins", pod("app", &no, nil), nil, false},
		{"off but projected", pod("quiet", &no, kubeAPI),
			[]snapshot.Token{{Kind: snapshot.TokenProjected, ServiceAccount: "quiet", Volume: "kube-api-access", Path: "token"}}, true},
		{"legacy Secrets by name, own and another's", pod("app", &no, nil, "app-token-x7k2p", "builder-token", "tls-cert", "nobody-token-abcde", "app-token-a-b"),
			[]snapshot.Token{
				{Kind: snapshot.TokenLegacySecret, ServiceAccount: "app", Secret: "app-token-x7k2p"},
				{Kind: snapshot.TokenLegacySecret, ServiceAccount: "builder", Secret: "builder-token"},
			}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, s.Tokens(tt.w)); diff != "" {
				t.Errorf("Tokens (-want +got):\n%s", diff)
			}
			if got := s.HoldsOwnToken(tt.w); got != tt.own {
				t.Errorf("HoldsOwnToken = %v, want %v", got, tt.own)
			}
		})
	}
	p := snapshot.Token{Kind: snapshot.TokenProjected, Volume: "v", Audience: "identity.l5d.io", Path: "t"}
	if p.Assumption() == "" || (snapshot.Token{Kind: snapshot.TokenProjected, Volume: "v", Path: "t"}).Assumption() != "" {
		t.Errorf("a projection for another audience needs an assumption, one for the API server none")
	}
}
