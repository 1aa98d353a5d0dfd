// Package rulesdoc renders the rules reference (docs/rules.md) from the
// catalogue: every rule of package rules and the escalation-path rule of
// package paths, with its severity, controls, rationale, what triggers it
// and the remediation. A test keeps docs/rules.md in step with the code.
package rulesdoc

import (
	"fmt"
	"strings"

	"secureaudit.dev/services/risk-agent/paths"
	"secureaudit.dev/services/risk-agent/rules"
)

// Markdown returns the rules reference.
func Markdown() string {
	all := append(rules.Catalogue(), paths.Rule)
	var b strings.Builder
	b.WriteString("# Rules reference\n\n")
	b.WriteString("<!-- Generated from the catalogue by services/risk-agent/rulesdoc: run `go test ./rulesdoc -update` in services/risk-agent. Do not edit. -->\n\n")
	fmt.Fprintf(&b, "Catalogue version %s: %d rules. Every rule is a pure function of the snapshot; its fixture, `services/risk-agent/%s/testdata/rules/<ID>/`, holds positives and near misses and the exact expected findings.\n\n", rules.CatalogueVersion, len(all), "rules")
	b.WriteString("How severity is computed: each finding starts at its rule's base severity; a grant restricted by resourceNames goes down one level and does not go up for a cluster-wide scope (the named objects are what it reaches, at any scope), and named Secrets are LOW at most; a cluster-wide grant and a group subject each go up one (CRITICAL at most), and a grant confined to one ordinary namespace stays at HIGH at most (kube-system is not ordinary). Findings about platform-managed grants go to the infrastructure appendix: a grant is platform-managed only when it is recognised as one the platform creates, a binding of the upstream bootstrap policy captured from the API server or of the catalogue of AKS managed add-ons (services/risk-agent/rules/addons), with the same roleRef, naming the subject, through a role that grants nothing beyond the recorded rules; a namespace (kube-system) or a name (system:*, aks*) never makes it so, and system:masters is platform-managed only through the upstream cluster-admin binding. A catalogued add-on role holding more than its entry is reported as RBAC-035 naming the excess. A Role or RoleBinding never grants cluster-scoped resources, so rules on those never fire for them. A grant of every verb on every resource (RBAC-001) implies RBAC-004 and the permission rules RBAC-013 to RBAC-032 and RBAC-040; those are not repeated for it but folded into its finding (Finding.folded), and their controls count towards compliance status as the finding's own.\n\n")
	fmt.Fprintf(&b, "Authorizer semantics follow the audited server's version: from Kubernetes 1.35 (`AuthorizePodWebsocketUpgradeCreatePermission`, beta and on by default; kubernetes/kubernetes#134577, KEP-4006) exec, attach and port-forward need `create` on pods/exec, pods/attach and pods/portforward, so a get-only grant is not reported as RBAC-006 or RBAC-023 on such a cluster; before 1.35 a websocket `get` sufficed and is reported. The version is the live API server's (discovery, /version), or for a snapshot file `--server-version`, else the highest kubelet version of the snapshot's Nodes (kubelets are never newer than the API server), else %s; the report's header says which version applied and where it came from.\n\n", "the stated default "+rules.DefaultServerVersion)
	b.WriteString("| ID | title | base severity | controls |\n|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s |\n", r.ID, strings.ToLower(r.ID), r.Title, severity(r), strings.Join(r.Controls, ", "))
	}
	for _, r := range all {
		fmt.Fprintf(&b, "\n## %s\n\n**%s**. Base severity %s. Controls: %s.\n\n%s\n\n", r.ID, r.Title, severity(r), strings.Join(r.Controls, ", "), r.Description)
		if p := rules.Permissions(r.ID); len(p) > 0 {
			b.WriteString("Fires on any of:")
			if r.ID == rules.CSRApproval || r.ID == rules.BindCreate {
				b.WriteString(" (one permission of each kind is needed: the approval and the signer, or bind and a binding create)")
			}
			b.WriteString("\n\n")
			for _, x := range p {
				fmt.Fprintf(&b, "- `%s`\n", x)
			}
			b.WriteString("\n")
		}
		if r.ID == rules.ControllerEscalation {
			version, table := rules.Controllers()
			fmt.Fprintf(&b, "Controllers (table version %s, `services/risk-agent/rules/controllers.json`; extend it with an entry and its source):\n\n| API group | resources | controller ServiceAccount | what it does | assumption | source |\n|---|---|---|---|---|---|\n", version)
			for _, c := range table {
				sa := c.ServiceAccount + " (any namespace)"
				if c.OwnNamespaceOnly {
					sa = c.ServiceAccount + " (resources in its own namespace only)"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | <%s> |\n", c.Group, strings.Join(c.Resources, ", "), sa, c.Does, c.Assumption, c.Source)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Remediation: %s Each finding carries the exact `kubectl` command for its role or binding.\n", r.Remediation)
		dir := "rules"
		if r.ID == paths.RuleID {
			dir = "paths"
		}
		fmt.Fprintf(&b, "\nFixture: `services/risk-agent/%s/testdata/rules/%s/`.\n", dir, r.ID)
	}
	b.WriteString(injectionRules())
	b.WriteString(differences)
	return b.String()
}

// differences documents each deliberate change of severity or semantics
// from the prototype's rules (the catalogue before version 2026.12.1; the
// seed, /work/shared/seed, is an essay and fixes no severities).
const differences = `
## Differences from the prototype

The seed of the project (the essay "From Local to Trusted") fixes no rule severities; the prototype's are those of the catalogue before version 2026.12.1. Each deliberate difference, and why:

| rule | prototype | now | reason |
|---|---|---|---|
| RBAC-003 | a grant of named Secrets went down one level, then up again for a cluster-wide scope or a group (MEDIUM to CRITICAL) | named Secrets are LOW at most, at any scope and for any subject | resourceNames confine the grant to the named objects whatever the scope; a cluster-wide grant of one named Secret is not a cluster-wide Secret reader |
| all grant rules | resourceNames: -1, then +1 for a cluster-wide scope | resourceNames: -1, and no cluster-wide step | the same reason: a binding's scope does not widen a grant restricted to named objects (RBAC-018 with bind restricted to harmless roles, cluster-wide, is now MEDIUM, not HIGH) |
| RBAC-005 | pod create plus a read of named Secrets raised pod create to HIGH | only an unrestricted Secret read raises it | a read of named Secrets adds little to pod create |
| RBAC-004 | any '*' in a bound role: MEDIUM (HIGH cluster-wide) | full wildcard only when it writes in a built-in API group or every group; '*' writing only custom resource groups, or a read-only '*' reaching Secrets, LOW; a read-only '*' reaching no Secrets not reported | a read-only or CRD-only wildcard was reported as if it granted everything; the Secret read of a read-only '*' in core stays reported by RBAC-003 |
| RBAC-006, RBAC-023 | get on pods/exec, pods/attach or pods/portforward always counted | counts only before Kubernetes 1.35; the server version is recorded in the snapshot (default 1.37, stated in the report) | since 1.35 the API server authorizes the websocket upgrade as create (AuthorizePodWebsocketUpgradeCreatePermission, on by default): get alone gives no exec |
| RBAC-036 | only dangerous permissions aggregated into admin, edit or view | any write the built-in role lacks, on any API group: LOW (MEDIUM into view); dangerous additions stay MEDIUM; writes on the resources of a privileged controller present in the snapshot (RBAC-041) HIGH | every admin, editor or viewer in every namespace gets the write; the rules reference always said any |
| RBAC-020 | built-in workload controllers only | also create on Tekton TaskRuns and PipelineRuns and Argo Workflows and CronWorkflows | their controllers run pods as any ServiceAccount of the namespace the resource names: indirect pod creation like a Deployment |
| RBAC-041, RBAC-042, RBAC-043 | not detected | HIGH, HIGH, MEDIUM base | escalation through a privileged controller, APIService redirection and Pod Security relabelling of a Namespace were missed |
`

func severity(r rules.Rule) string {
	return strings.TrimPrefix(r.Severity.String(), "SEVERITY_")
}
