package rules

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// aggregates are the built-in roles other roles aggregate into, widest
// first: admin includes edit includes view.
var aggregates = []string{"admin", "edit", "view"}

// bootstrapJSON is the upstream bootstrap policy: every ClusterRole a fresh
// kube-apiserver creates (labelled kubernetes.io/bootstrapping=rbac-defaults),
// as a protojson SnapshotChunk whose header names the server version. It is
// captured from the real API server by test/kube's
// TestBootstrapPolicyCaptured, never written by hand; see upstream/README.md.
//
//go:embed upstream/bootstrap-clusterroles.json
var bootstrapJSON []byte

// policy is the parsed bootstrap policy with each role's effective rules
// (its own and those it aggregates among the bootstrap roles, as the
// clusterrole-aggregation controller would fill them in) and their profile.
type policy struct {
	version   string
	effective map[string][]*secureauditv1.PolicyRule
	profiles  map[string]*profile
	// legacy are the profiles with the semantics of API servers before
	// 1.35 (get on pods/exec and the like counts), to compare like with like.
	legacy map[string]*profile
	// parts maps each role without an aggregationRule that other bootstrap
	// roles aggregate (system:aggregate-to-admin, -edit, -view) to them.
	parts map[string][]string
}

// bootstrap parses the embedded policy once. The file is checked by the
// tests of this package and of test/kube; a parse error is a build defect.
var bootstrap = sync.OnceValue(func() *policy {
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(bootstrapJSON, chunk); err != nil {
		panic("rules: embedded upstream/bootstrap-clusterroles.json: " + err.Error())
	}
	s := snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)
	p := &policy{
		version:   chunk.GetHeader().GetServerVersion(),
		effective: map[string][]*secureauditv1.PolicyRule{},
		profiles:  map[string]*profile{},
		legacy:    map[string]*profile{},
		parts:     map[string][]string{},
	}
	roles := s.ClusterRoles()
	for _, cr := range roles {
		name := cr.GetMeta().GetName()
		rules, _ := s.EffectiveClusterRoleRules(name)
		p.effective[name] = rules
		p.profiles[name] = newProfile(rules, false, false)
		p.legacy[name] = newProfile(rules, false, true)
		if len(cr.GetAggregationSelectors()) > 0 {
			continue
		}
		for _, agg := range roles {
			if agg != cr && slices.ContainsFunc(agg.GetAggregationSelectors(), func(ls *secureauditv1.LabelSelector) bool {
				return snapshot.Matches(ls, cr.GetMeta().GetLabels())
			}) {
				p.parts[name] = append(p.parts[name], agg.GetMeta().GetName())
			}
		}
	}
	return p
})

// upstream returns the effective upstream rules of a bootstrap ClusterRole
// (aggregation resolved among the bootstrap roles: admin is
// system:aggregate-to-admin, -edit and -view), and whether name is one.
func upstream(name string) ([]*secureauditv1.PolicyRule, bool) {
	rules, ok := bootstrap().effective[name]
	return rules, ok
}

// upstreamProfile is the profile of upstream(name), computed once, with the
// semantics of an API server from 1.35, or before it when streamGet is set.
func upstreamProfile(name string, streamGet bool) (*profile, bool) {
	if streamGet {
		p, ok := bootstrap().legacy[name]
		return p, ok
	}
	p, ok := bootstrap().profiles[name]
	return p, ok
}

// reportedThrough returns the bootstrap role that aggregates part both
// upstream and in s ("" when none): a widened system:aggregate-to-edit is
// reported as edit (and admin) widened, with it as the contributor, not
// again on its own.
func reportedThrough(s *snapshot.Snapshot, part *secureauditv1.ClusterRole) string {
	for _, name := range bootstrap().parts[part.GetMeta().GetName()] {
		agg, ok := s.ClusterRole(name)
		if ok && slices.ContainsFunc(agg.GetAggregationSelectors(), func(ls *secureauditv1.LabelSelector) bool {
			return snapshot.Matches(ls, part.GetMeta().GetLabels())
		}) {
			return name
		}
	}
	return ""
}

// widened is a target a role grants beyond upstream. names is set when
// upstream grants the target on named objects only (resourceNames) and the
// role on more: "any name", or "named a, b" for the names upstream lacks.
type widened struct {
	target
	names string
}

func (w widened) String() string {
	if w.names == "" {
		return w.target.String()
	}
	return w.target.String() + " (" + w.names + ")"
}

// widenedList and widenedSummary are targetList and summary of widened
// targets.
func widenedList(ws []widened) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}

func widenedSummary(ws []widened) string {
	const n = 4
	if len(ws) <= n {
		return widenedList(ws)
	}
	return widenedList(ws[:n]) + fmt.Sprintf(" and %d more", len(ws)-n)
}

// beyond returns the targets p grants that base does not, in capability
// order, and the rules of p that grant them. A target base grants only on
// named objects (resourceNames) counts when p grants it on any name or on
// other names, such as approve on every signer where upstream names one.
func beyond(p, base *profile, all []*secureauditv1.PolicyRule) ([]widened, []*secureauditv1.PolicyRule) {
	var extra []widened
	var rules []*secureauditv1.PolicyRule
	if len(p.full) > 0 && len(base.full) == 0 {
		extra = append(extra, widened{target: target{verb: "*", group: "*", resource: "*"}})
		rules = append(rules, p.full...)
	}
	seen := map[target]bool{}
	for c := range numCaps {
		for _, t := range p.caps[c].found {
			if seen[t] {
				continue
			}
			w := widened{target: t}
			if containsTarget(base.caps[c].found, t) {
				names, wider := widerNames(p.caps[c].rules, base.caps[c].rules, t)
				if !wider {
					continue
				}
				w.names = names
			}
			seen[t] = true
			extra = append(extra, w)
			for _, r := range p.caps[c].rules {
				if allows(r, t) {
					rules = append(rules, r)
				}
			}
		}
	}
	return extra, mergeRules(all, rules)
}

// widerNames reports whether the rules allowing t reach objects the base
// rules allowing t do not, when every base rule is restricted by
// resourceNames; it says how: "any name", or the names base lacks.
func widerNames(rules, base []*secureauditv1.PolicyRule, t target) (string, bool) {
	var allowed []string
	for _, r := range base {
		if !allows(r, t) {
			continue
		}
		if len(r.GetResourceNames()) == 0 {
			return "", false
		}
		allowed = append(allowed, r.GetResourceNames()...)
	}
	var more []string
	for _, r := range rules {
		if !allows(r, t) {
			continue
		}
		if !restricted(r) {
			return "any name", true
		}
		for _, n := range r.GetResourceNames() {
			if !slices.Contains(allowed, n) && !slices.Contains(more, n) {
				more = append(more, n)
			}
		}
	}
	if len(more) == 0 {
		return "", false
	}
	slices.Sort(more)
	return "named " + strings.Join(more, ", "), true
}

func containsTarget(ts []target, t target) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}
