package rules

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// controllersJSON is the declared table of custom resources a privileged
// controller acts on with its own rights (RBAC-041). Extend it by adding an
// entry with its public source.
//
//go:embed controllers.json
var controllersJSON []byte

// Controller is one entry of the table: writes on Group/Resources reach the
// rights of the controller running as ServiceAccount.
type Controller struct {
	Group     string   `json:"group"`
	Resources []string `json:"resources"`
	// ClusterScoped resources are written only through cluster-wide grants.
	ClusterScoped bool `json:"clusterScoped,omitempty"`
	// ServiceAccount is the controller's ServiceAccount name, in any
	// namespace (installations choose their namespace).
	ServiceAccount string `json:"serviceAccount"`
	// OwnNamespaceOnly: the controller honours the resources only in its
	// own namespace by default, so only grants reaching it count.
	OwnNamespaceOnly bool   `json:"ownNamespaceOnly,omitempty"`
	Does             string `json:"does"`
	Assumption       string `json:"assumption"`
	Source           string `json:"source"`
}

type controllerTable struct {
	Version     string       `json:"version"`
	Controllers []Controller `json:"controllers"`
}

// controllers parses the embedded table once; a parse error is a build
// defect, caught by the package's tests.
var controllers = sync.OnceValue(func() controllerTable {
	var t controllerTable
	if err := json.Unmarshal(controllersJSON, &t); err != nil {
		panic("rules: embedded controllers.json: " + err.Error())
	}
	return t
})

// Controllers returns the declared controller table and its version.
func Controllers() (string, []Controller) {
	t := controllers()
	return t.Version, slices.Clone(t.Controllers)
}

// privilegedSA is a controller ServiceAccount of the snapshot with
// cluster-wide rights worth reaching.
type privilegedSA struct {
	ns, name string
	admin    bool   // cluster-admin equivalent
	what     string // what it holds, for people
	via      string // the binding that gives it
}

// privilegedServiceAccounts returns, by "ns/name", the ServiceAccounts whose
// cluster-wide grants give every verb on every resource or a dangerous
// capability not restricted by resourceNames.
func privilegedServiceAccounts(a *Analysis, names map[string]bool) map[string]*privilegedSA {
	out := map[string]*privilegedSA{}
	for _, g := range a.grants {
		sub := g.Subject
		if sub.GetKind() != secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT || !names[sub.GetName()] || g.namespaced() || g.Role.GetMissing() {
			continue
		}
		k := sub.GetNamespace() + "/" + sub.GetName()
		p := out[k]
		if _, ok := g.FullAdmin(); ok {
			if p == nil || !p.admin {
				out[k] = &privilegedSA{ns: sub.GetNamespace(), name: sub.GetName(), admin: true,
					what: "every verb on every resource (cluster-admin equivalent)", via: bindingText(g.Binding)}
			}
			continue
		}
		if p != nil {
			continue
		}
		if _, why, _ := dangerous(g.prof); why != "" {
			out[k] = &privilegedSA{ns: sub.GetNamespace(), name: sub.GetName(), what: why + " cluster-wide", via: bindingText(g.Binding)}
		}
	}
	return out
}

// controllerEntry is an entry of the table whose controller ServiceAccount
// is present and privileged in the snapshot.
type controllerEntry struct {
	c       Controller
	targets []target
	sas     []*privilegedSA
}

// presentControllers returns the entries of the table whose controller
// ServiceAccount the snapshot holds with privileged cluster-wide grants.
func presentControllers(a *Analysis) []controllerEntry {
	_, table := Controllers()
	names := map[string]bool{}
	for _, c := range table {
		names[c.ServiceAccount] = true
	}
	priv := privilegedServiceAccounts(a, names)
	if len(priv) == 0 {
		return nil
	}
	keys := make([]string, 0, len(priv))
	for k := range priv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var entries []controllerEntry
	for _, c := range table {
		var sas []*privilegedSA
		for _, k := range keys {
			if priv[k].name == c.ServiceAccount {
				sas = append(sas, priv[k])
			}
		}
		if len(sas) > 0 {
			entries = append(entries, controllerEntry{c: c, targets: cross(c.Group, writeVerbs, c.Resources, c.ClusterScoped), sas: sas})
		}
	}
	return entries
}

// controllerEscalation runs RBAC-041: one finding per grant that can write
// a resource of the table whose controller ServiceAccount is present and
// privileged, naming every controller it reaches.
func controllerEscalation(a *Analysis, entries []controllerEntry) []*draft {
	if len(entries) == 0 {
		return nil
	}
	var out []*draft
	for _, g := range a.grants {
		if g.Role.GetMissing() {
			continue
		}
		if _, admin := g.FullAdmin(); admin {
			continue // RBAC-001 says it all
		}
		var matched []*secureauditv1.PolicyRule
		var reached, assumptions, sources []string
		admin := false
		for _, e := range entries {
			m := find(g.Rules, g.namespaced(), false, e.targets...)
			if !m.ok() || m.narrow {
				continue
			}
			hit := false
			for _, sa := range e.sas {
				sub := g.Subject
				// The controller itself, and the components installed
				// beside it, are the installation's own design.
				if sub.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT && sub.GetNamespace() == sa.ns {
					continue
				}
				if e.c.OwnNamespaceOnly && g.namespaced() && g.Namespace != sa.ns {
					continue
				}
				hit = true
				admin = admin || sa.admin
				r := "ServiceAccount " + sa.ns + "/" + sa.name + " (" + sa.what + ", via " + sa.via + "), which " + e.c.Does + ", through " + m.list
				if !slices.Contains(reached, r) {
					reached = append(reached, r)
				}
			}
			if !hit {
				continue
			}
			matched = mergeRules(g.Rules, matched, m.rules)
			if !slices.Contains(assumptions, e.c.Assumption) {
				assumptions = append(assumptions, e.c.Assumption)
			}
			if !slices.Contains(sources, e.c.Source) {
				sources = append(sources, e.c.Source)
			}
		}
		if len(reached) == 0 {
			continue
		}
		r := ruleByID(ControllerEscalation)
		d := &draft{rule: r, g: g, matched: matched,
			detail: "Reaches " + strings.Join(reached, "; ") + ". Conditional: it assumes " + strings.Join(assumptions, "; and ") +
				" (the snapshot does not show the controllers' configuration). Sources: " + strings.Join(sources, ", ") + ".",
			fix: editRoleOf(g, matched) + " and drop the write verbs on the controller's resources" + aggNote(g, matched)}
		why := "reaches a controller"
		if admin {
			why = "reaches a cluster-admin-equivalent controller"
		}
		d.ladder = newLadder(r.Severity, why)
		if !admin {
			d.ladder.down("the controller holds less than cluster-admin")
		}
		if g.group() {
			d.ladder.up("group subject")
		}
		d.ladder.atMost(high, "conditional on the controller's configuration")
		out = append(out, d)
	}
	return out
}
