package rules

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// This file is the one place that decides whether a grant is
// platform-managed. A grant (a binding and one of its subjects) is
// platform-managed only when it is recognised as something the platform
// creates:
//
//   - the upstream bootstrap policy, captured from the real API server
//     (upstream/bootstrap-bindings.json and bootstrap-clusterroles.json): the
//     binding by kind, namespace and name, with the same roleRef, naming the
//     subject, and a role that grants nothing beyond the captured one; or
//   - an entry of the catalogue of AKS managed add-ons (addons/aks.json),
//     matched the same way against the rules the entry records.
//
// Neither a namespace (kube-system) nor a name (system:..., aks...) makes a
// grant platform-managed: a ServiceAccount planted in kube-system, an extra
// subject on a bootstrap binding, or an add-on whose role holds more than
// its entry is judged like any other grant. system:masters is
// platform-managed only through the upstream cluster-admin binding.

// bootstrapBindingsJSON is the rest of the upstream bootstrap policy: the
// ClusterRoleBindings, Roles and RoleBindings a fresh kube-apiserver
// creates, as a protojson SnapshotChunk captured by test/kube's
// TestBootstrapPolicyCaptured (see upstream/README.md).
//
//go:embed upstream/bootstrap-bindings.json
var bootstrapBindingsJSON []byte

// aksAddonsJSON is the catalogue of AKS managed add-ons (addons/README.md).
//
//go:embed addons/aks.json
var aksAddonsJSON []byte

// SourceBootstrap is the source of a grant the upstream bootstrap policy
// creates; add-on grants have the source "aks:<add-on>".
const SourceBootstrap = "bootstrap"

// addonCatalogue is the decoded addons/aks.json.
type addonCatalogue struct {
	Version string  `json:"version"`
	Addons  []addon `json:"addons"`
}

type addon struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Source      struct {
		Repository string `json:"repository"`
		Path       string `json:"path"`
		Commit     string `json:"commit"`
	} `json:"source"`
	ClusterRoles []addonRole    `json:"clusterRoles"`
	Roles        []addonRole    `json:"roles"`
	Bindings     []addonBinding `json:"bindings"`
}

type addonRole struct {
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	Rules     []addonRule `json:"rules"`
	// RulesUnpublished marks a role whose rules the platform does not
	// publish (AKS's aks-service): the entry records none, so the role is
	// recognised only while it grants nothing the rules judge, and RBAC-035
	// reports only what the platform's documentation says it cannot do
	// (see documentedExcess).
	RulesUnpublished bool `json:"rulesUnpublished"`
}

type addonRule struct {
	APIGroups       []string `json:"apiGroups"`
	Resources       []string `json:"resources"`
	Verbs           []string `json:"verbs"`
	ResourceNames   []string `json:"resourceNames"`
	NonResourceURLs []string `json:"nonResourceURLs"`
}

type addonBinding struct {
	Kind      string `json:"kind"` // ClusterRoleBinding or RoleBinding
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	RoleRef   struct {
		Kind string `json:"kind"` // ClusterRole or Role
		Name string `json:"name"`
	} `json:"roleRef"`
	Subjects []struct {
		Kind      string `json:"kind"` // User, Group or ServiceAccount
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"subjects"`
}

// knownBinding is a binding the platform creates.
type knownBinding struct {
	role     string          // role key: "C//name" or "R/ns/name"
	subjects map[string]bool // subjectKey
	source   string
}

// knownRole is a role the platform creates: the profile of the rules it
// holds, and what recorded it.
type knownRole struct {
	prof   *profile
	source string
}

// recognised is everything the platform is known to create.
type recognised struct {
	version  string // the catalogue's version
	bindings map[string]*knownBinding
	roles    map[string]*knownRole
	addons   []addon
}

// known parses the embedded policy and catalogue once. Both files are
// checked by this package's tests; a parse error is a build defect. Its
// profiles count a get on pods/exec, pods/attach and pods/portforward as
// those capabilities (the pre-1.35 semantics) on both sides of every
// comparison, so that recognition is the stricter of the two.
var known = sync.OnceValue(func() *recognised {
	k := &recognised{bindings: map[string]*knownBinding{}, roles: map[string]*knownRole{}}
	chunk := &secureauditv1.SnapshotChunk{}
	if err := protojson.Unmarshal(bootstrapBindingsJSON, chunk); err != nil {
		panic("rules: embedded upstream/bootstrap-bindings.json: " + err.Error())
	}
	for name := range bootstrap().effective {
		p, _ := upstreamProfile(name, true)
		k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, "", name)] = &knownRole{prof: p, source: SourceBootstrap}
	}
	for _, r := range chunk.GetRoles() {
		k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_ROLE, r.GetMeta().GetNamespace(), r.GetMeta().GetName())] =
			&knownRole{prof: newProfile(r.GetRules(), false, true), source: SourceBootstrap}
	}
	add := func(kind secureauditv1.BindingKind, ns, name string, ref *secureauditv1.RoleRef, subs []*secureauditv1.Subject, source string) {
		kb := &knownBinding{role: roleKey(ref.GetKind(), ns, ref.GetName()), subjects: map[string]bool{}, source: source}
		for _, s := range subs {
			kb.subjects[subjectKey(s)] = true
		}
		k.bindings[bindingKey(kind, ns, name)] = kb
	}
	for _, b := range chunk.GetClusterRoleBindings() {
		add(secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, "", b.GetMeta().GetName(), b.GetRoleRef(), b.GetSubjects(), SourceBootstrap)
	}
	for _, b := range chunk.GetRoleBindings() {
		add(secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, b.GetMeta().GetNamespace(), b.GetMeta().GetName(), b.GetRoleRef(), b.GetSubjects(), SourceBootstrap)
	}

	var cat addonCatalogue
	if err := json.Unmarshal(aksAddonsJSON, &cat); err != nil {
		panic("rules: embedded addons/aks.json: " + err.Error())
	}
	k.version = cat.Version
	k.addons = cat.Addons
	for i := range k.addons {
		a := &k.addons[i]
		source := "aks:" + a.Name
		for _, r := range a.ClusterRoles {
			rules := policyRules(r.Rules)
			k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, "", r.Name)] = &knownRole{prof: newProfile(rules, false, true), source: source}
		}
		for _, r := range a.Roles {
			rules := policyRules(r.Rules)
			k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_ROLE, r.Namespace, r.Name)] = &knownRole{prof: newProfile(rules, false, true), source: source}
		}
		for _, b := range a.Bindings {
			kind, ns := secureauditv1.BindingKind_BINDING_KIND_CLUSTER_ROLE_BINDING, ""
			if b.Kind == "RoleBinding" {
				kind, ns = secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING, b.Namespace
			}
			ref := &secureauditv1.RoleRef{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: b.RoleRef.Name}
			if b.RoleRef.Kind == "Role" {
				ref.Kind = secureauditv1.RoleKind_ROLE_KIND_ROLE
			}
			var subs []*secureauditv1.Subject
			for _, s := range b.Subjects {
				sub := &secureauditv1.Subject{Name: s.Name, Namespace: s.Namespace, Kind: secureauditv1.SubjectKind_SUBJECT_KIND_USER}
				switch s.Kind {
				case "Group":
					sub.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_GROUP
				case "ServiceAccount":
					sub.Kind = secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT
				}
				subs = append(subs, sub)
			}
			add(kind, ns, b.Name, ref, subs, source)
		}
	}
	return k
})

// AddonCatalogueVersion is the version of the embedded AKS add-on catalogue.
func AddonCatalogueVersion() string { return known().version }

func policyRules(rs []addonRule) []*secureauditv1.PolicyRule {
	out := make([]*secureauditv1.PolicyRule, 0, len(rs))
	for _, r := range rs {
		out = append(out, &secureauditv1.PolicyRule{
			ApiGroups: r.APIGroups, Resources: r.Resources, Verbs: r.Verbs,
			ResourceNames: r.ResourceNames, NonResourceUrls: r.NonResourceURLs,
		})
	}
	return out
}

func roleKey(kind secureauditv1.RoleKind, ns, name string) string {
	if kind == secureauditv1.RoleKind_ROLE_KIND_ROLE {
		return "R/" + ns + "/" + name
	}
	return "C//" + name
}

func bindingKey(kind secureauditv1.BindingKind, ns, name string) string {
	if kind == secureauditv1.BindingKind_BINDING_KIND_ROLE_BINDING {
		return "RB/" + ns + "/" + name
	}
	return "CRB//" + name
}

// recognise returns what recognises g as platform-managed (SourceBootstrap
// or "aks:<add-on>"), or "" when nothing does: the binding must be a known
// one with the same roleRef, name the subject, and its role must grant
// nothing beyond the known role's rules.
func recognise(g *Grant) string {
	k := known()
	b := g.Binding
	kb := k.bindings[bindingKey(b.GetKind(), b.GetNamespace(), b.GetName())]
	if kb == nil || !kb.subjects[subjectKey(g.Subject)] {
		return ""
	}
	rk := roleKey(g.Role.GetKind(), g.Role.GetNamespace(), g.Role.GetName())
	if rk != kb.role {
		return ""
	}
	kr := k.roles[rk]
	if kr == nil {
		return ""
	}
	if g.Role.GetMissing() {
		return kb.source // grants nothing; the binding is the platform's
	}
	if extra, _ := beyond(newProfile(g.Rules, false, true), kr.prof, g.Rules); len(extra) > 0 {
		return ""
	}
	return kb.source
}

// PlatformManaged reports whether the grant is platform-managed (see
// recognise), and what recognised it.
func (g *Grant) PlatformManaged() (string, bool) { return g.managed, g.managed != "" }

// ManagedGrants lists the platform-managed grants, in grant order: the
// decision the orchestrator's access review consumes.
func (a *Analysis) ManagedGrants() []*secureauditv1.ManagedGrant {
	var out []*secureauditv1.ManagedGrant
	for _, g := range a.grants {
		if g.managed == "" {
			continue
		}
		s := g.Subject
		out = append(out, &secureauditv1.ManagedGrant{
			Binding: &secureauditv1.BindingRef{Kind: g.Binding.GetKind(), Name: g.Binding.GetName(), Namespace: g.Binding.GetNamespace()},
			Subject: &secureauditv1.SubjectRef{Kind: s.GetKind(), Name: s.GetName(), Namespace: s.GetNamespace()},
			Source:  g.managed,
		})
	}
	return out
}

// managedServiceAccounts returns the ServiceAccounts (snapshot.Key) whose
// every grant is platform-managed; findings about their workloads go to the
// appendix with them. A ServiceAccount without grants is not in it.
func managedServiceAccounts(a *Analysis) map[string]bool {
	out := map[string]bool{}
	for _, g := range a.grants {
		if g.Subject.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			continue
		}
		k := g.Subject.GetNamespace() + "/" + g.Subject.GetName()
		prev, seen := out[k]
		out[k] = (prev || !seen) && g.managed != ""
	}
	return out
}

// addonWidened reports, as RBAC-035, every role of the AKS add-on
// catalogue that the snapshot defines with more than its entry: the excess
// is named, and the add-on's grants through it are judged as any others.
func addonWidened(a *Analysis) []*draft {
	s := a.snap
	k := known()
	var out []*draft
	for i := range k.addons {
		ad := &k.addons[i]
		for _, r := range ad.ClusterRoles {
			rules, ok := s.EffectiveClusterRoleRules(r.Name)
			if !ok {
				continue
			}
			kr := k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, "", r.Name)]
			ref := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: r.Name}
			if r.RulesUnpublished {
				if d := unpublishedExcess(ad, ref, rules, "kubectl edit clusterrole "+quote(r.Name)); d != nil {
					out = append(out, d)
				}
				continue
			}
			if d := widenedAddon(ad, kr, ref, rules, "kubectl edit clusterrole "+quote(r.Name), ""); d != nil {
				out = append(out, d)
			}
		}
		for _, r := range ad.Roles {
			role, ok := s.Role(r.Namespace, r.Name)
			if !ok {
				continue
			}
			kr := k.roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_ROLE, r.Namespace, r.Name)]
			ref := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_ROLE, Namespace: r.Namespace, Name: r.Name}
			if d := widenedAddon(ad, kr, ref, role.GetRules(), "kubectl -n "+quote(r.Namespace)+" edit role "+quote(r.Name), r.Namespace); d != nil {
				out = append(out, d)
			}
		}
	}
	return out
}

func widenedAddon(ad *addon, kr *knownRole, ref *secureauditv1.FindingRole, rules []*secureauditv1.PolicyRule, edit, ns string) *draft {
	extra, matched := beyond(newProfile(rules, false, true), kr.prof, rules)
	if len(extra) == 0 {
		return nil
	}
	src := ad.Source.Repository + "/" + ad.Source.Path + "@" + ad.Source.Commit[:12]
	d := &draft{
		rule: ruleByID(BuiltinWidened), role: ref, ns: ns, matched: matched,
		detail: fmt.Sprintf("%s is a role of the AKS add-on %s, catalogued from %s; it grants more than the catalogue entry: %s. Its grants are judged like any other.",
			roleText(ref), ad.Name, src, widenedList(extra)),
		fix: edit + " and remove the rules granting " + widenedSummary(extra),
	}
	d.ladder = newLadder(d.rule.Severity, "add-on role "+ref.GetName()+" grants "+widenedSummary(extra))
	return d
}

// documentedExclusions are the capabilities AKS documents that a role
// with unpublished rules cannot hold: aks-service "can't modify
// permissions or create roles or role bindings" (addons/aks.json,
// aks-support).
var documentedExclusions = []Capability{CapRBACWrite, CapBind, CapEscalateClusterRoles, CapCreateBindings, CapCreateClusterRoleBindings}

// documentedExcess returns what p grants of the documented exclusions, and
// the rules granting it: every verb on every resource alone when p grants
// that (it implies the rest).
func documentedExcess(p *profile, all []*secureauditv1.PolicyRule) ([]widened, []*secureauditv1.PolicyRule) {
	if len(p.full) > 0 {
		return []widened{{target: target{verb: "*", group: "*", resource: "*"}}}, mergeRules(all, p.full)
	}
	var extra []widened
	var rules []*secureauditv1.PolicyRule
	seen := map[target]bool{}
	for _, c := range documentedExclusions {
		for _, t := range p.caps[c].found {
			if seen[t] {
				continue
			}
			seen[t] = true
			extra = append(extra, widened{target: t})
			for _, r := range p.caps[c].rules {
				if allows(r, t) {
					rules = append(rules, r)
				}
			}
		}
	}
	return extra, mergeRules(all, rules)
}

// unpublishedExcess reports, as RBAC-035, a role whose rules the platform
// does not publish when it grants what the platform's documentation says
// it cannot.
func unpublishedExcess(ad *addon, ref *secureauditv1.FindingRole, rules []*secureauditv1.PolicyRule, edit string) *draft {
	extra, matched := documentedExcess(newProfile(rules, false, true), rules)
	if len(extra) == 0 {
		return nil
	}
	src := ad.Source.Repository + "/" + ad.Source.Path + "@" + ad.Source.Commit[:12]
	d := &draft{
		rule: ruleByID(BuiltinWidened), role: ref, matched: matched,
		detail: fmt.Sprintf("%s is the role of the AKS entry %s (%s), which documents the role but not its rules, and states that it can't modify permissions or create roles or role bindings; this one grants %s. Its grants are judged like any other.",
			roleText(ref), ad.Name, src, widenedList(extra)),
		fix: edit + " and remove the rules granting " + widenedSummary(extra),
	}
	d.ladder = newLadder(d.rule.Severity, "AKS role "+ref.GetName()+" grants what AKS documents it cannot: "+widenedSummary(extra))
	return d
}

// bootstrapRole reports whether a namespaced Role is one of the bootstrap
// policy's, with no rule beyond the captured one.
func bootstrapRole(ns, name string, rules []*secureauditv1.PolicyRule) bool {
	kr := known().roles[roleKey(secureauditv1.RoleKind_ROLE_KIND_ROLE, ns, name)]
	if kr == nil || kr.source != SourceBootstrap {
		return false
	}
	extra, _ := beyond(newProfile(rules, false, true), kr.prof, rules)
	return len(extra) == 0
}
