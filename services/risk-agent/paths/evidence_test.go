package paths_test

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// stepNeeds maps the start of a step's capability to what the step needs:
// each part must be allowed by some rule shown, and each rule shown must
// allow one request of some part. A part lists alternatives.
var stepNeeds = []struct {
	prefix string
	parts  [][]access.Attributes
}{
	{"holds every verb on every resource", [][]access.Attributes{{req("escalate", "clusterroles.rbac.authorization.k8s.io", "", "")}, {req("delete", "secrets", "", "")}}},
	{"can create pods", [][]access.Attributes{{req("create", "pods", "", "")}}},
	{"can exec or attach", [][]access.Attributes{{req("create", "pods/exec", "", ""), req("get", "pods/exec", "", ""), req("create", "pods/attach", "", ""), req("get", "pods/attach", "", "")}}},
	{"can read Secrets", [][]access.Attributes{{req("get", "secrets", "", ""), req("list", "secrets", "", ""), req("watch", "secrets", "", "")}}},
	{"can create a token Secret", [][]access.Attributes{{req("create", "secrets", "", "")}, {req("get", "secrets", "", ""), req("list", "secrets", "", ""), req("watch", "secrets", "", "")}}},
	{"can impersonate the group system:masters", [][]access.Attributes{{req("impersonate", "groups", "", "system:masters")}}},
	{"can approve a CertificateSigningRequest", [][]access.Attributes{{req("update", "certificatesigningrequests.certificates.k8s.io/approval", "", "")}, {req("approve", "signers.certificates.k8s.io", "", "kubernetes.io/kube-apiserver-client")}}},
	{"can run commands in any pod through the kubelet", [][]access.Attributes{{req("get", "nodes/proxy", "", ""), req("create", "nodes/proxy", "", "")}}},
	{"can bind cluster-admin to itself", [][]access.Attributes{{req("bind", "clusterroles.rbac.authorization.k8s.io", "", "cluster-admin")}, {req("create", "clusterrolebindings.rbac.authorization.k8s.io", "", "")}}},
}

// mintNeeds is what "can mint a token for it" needs, for the named
// ServiceAccount.
func mintNeeds(to string) [][]access.Attributes {
	name := to[strings.LastIndex(to, "/")+1:]
	return [][]access.Attributes{{req("create", "serviceaccounts/token", "", name)}}
}

// roleRules returns the rules of the role a step names, from the snapshot
// (a ClusterRole's effective rules, aggregation included), or from the
// grants when the snapshot does not define it (an upstream bootstrap role).
func roleRules(t *testing.T, s *snapshot.Snapshot, a *rules.Analysis, r *secureauditv1.FindingRole) []*secureauditv1.PolicyRule {
	t.Helper()
	if r.GetKind() == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		role, ok := s.Role(r.GetNamespace(), r.GetName())
		if !ok {
			t.Fatalf("step names Role %s/%s, which the snapshot does not hold", r.GetNamespace(), r.GetName())
		}
		return role.GetRules()
	}
	if rs, ok := s.EffectiveClusterRoleRules(r.GetName()); ok {
		return rs
	}
	for _, g := range a.Grants() {
		if proto.Equal(g.Role, r) {
			return g.Rules
		}
	}
	t.Fatalf("step names ClusterRole %s, which neither the snapshot nor the grants hold", r.GetName())
	return nil
}

// TestStepEvidence: for every step of every path of the fixture, the rules
// shown are rules of the role the step names, and they allow the step
// (each needed permission by some rule shown, each rule shown needed);
// the finding's own rules are those of its first step.
func TestStepEvidence(t *testing.T) {
	s := load(t, filepath.Join("testdata", "rules", paths.RuleID))
	a := rules.Analyze(s)
	checked := 0
	for _, f := range paths.Find(a) {
		for i, st := range f.GetPath() {
			if st.GetBinding() == nil {
				if len(st.GetRules()) > 0 {
					t.Errorf("%s step %d has no grant but shows rules", f.GetSubject().GetName(), i+1)
				}
				continue
			}
			if len(st.GetRules()) == 0 {
				t.Errorf("%s step %d (%s) shows no rules", f.GetSubject().GetName(), i+1, st.GetCapability())
				continue
			}
			own := roleRules(t, s, a, st.GetRole())
			for _, r := range st.GetRules() {
				found := false
				for _, o := range own {
					found = found || proto.Equal(r, o)
				}
				if !found {
					t.Errorf("%s step %d shows rule %v, which is not a rule of %v", f.GetSubject().GetName(), i+1, r, st.GetRole())
				}
			}
			var parts [][]access.Attributes
			if strings.HasPrefix(st.GetCapability(), "can mint a token for it") {
				parts = mintNeeds(st.GetTo())
			}
			for _, n := range stepNeeds {
				if strings.HasPrefix(st.GetCapability(), n.prefix) {
					parts = n.parts
				}
			}
			if parts == nil {
				t.Errorf("%s step %d: no expectation for capability %q; add one to stepNeeds", f.GetSubject().GetName(), i+1, st.GetCapability())
				continue
			}
			used := make([]bool, len(st.GetRules()))
			for _, alts := range parts {
				ok := false
				for j, r := range st.GetRules() {
					for _, req := range alts {
						if access.RuleAllows(r, req) {
							ok, used[j] = true, true
						}
					}
				}
				if !ok {
					t.Errorf("%s step %d (%s): no rule shown allows %+v", f.GetSubject().GetName(), i+1, st.GetCapability(), alts[0])
				}
			}
			for j, u := range used {
				if !u {
					t.Errorf("%s step %d (%s): rule %v is shown but allows no part of the step", f.GetSubject().GetName(), i+1, st.GetCapability(), st.GetRules()[j])
				}
			}
			checked++
		}
		if first := f.GetPath()[0]; !proto.Equal(&secureauditv1.PathStep{Rules: first.GetRules()}, &secureauditv1.PathStep{Rules: f.GetMatchedRules()}) {
			t.Errorf("%s: the finding's rules are not its first step's", f.GetSubject().GetName())
		}
	}
	if checked < 20 {
		t.Errorf("only %d steps with a grant checked", checked)
	}
}

// req spells a resource request as RESOURCE[.GROUP][/SUBRESOURCE], the group
// given in full (the evidence checks need no discovery: they name groups).
func req(verb, resource, namespace, name string) access.Attributes {
	res, sub, _ := strings.Cut(resource, "/")
	res, group, _ := strings.Cut(res, ".")
	return access.Attributes{ResourceRequest: true, Verb: verb, APIGroup: group, Resource: res, Subresource: sub, Namespace: namespace, Name: name}
}
