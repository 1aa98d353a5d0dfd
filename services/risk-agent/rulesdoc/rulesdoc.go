// Package rulesdoc renders the rules reference (docs/rules.md) from the rule
// registry: every rule of every family (RBAC, escalation path, identity,
// prompt injection), with its family, severity, controls and their titles,
// rationale, what triggers it, the remediation and its fixture. A test keeps
// docs/rules.md in step with the code.
package rulesdoc

import (
	"fmt"
	"slices"
	"strings"

	"secureaudit.dev/services/risk-agent/inject"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/rules"
)

// Markdown returns the rules reference.
func Markdown() string {
	all := registry.All()
	var b strings.Builder
	b.WriteString("# Rules reference\n\n")
	b.WriteString("<!-- Generated from the rule registry (services/risk-agent/registry) by services/risk-agent/rulesdoc: run `go test ./rulesdoc -update` in services/risk-agent. Do not edit. -->\n\n")
	counts := map[registry.Family]int{}
	for _, r := range all {
		counts[r.Family]++
	}
	fmt.Fprintf(&b, "Catalogue version %s: %d rules, %d RBAC, %d escalation path, %d identity (Entra ID), %d prompt injection and %d AKS configuration, all in one registry (`services/risk-agent/registry`), which every finding is built from: a finding carries its rule's family, title and controls with their titles. Every rule is a pure function of the snapshot (and, for identity, injection and AKS rules, the directory); its fixture, `services/risk-agent/<package>/testdata/rules/<ID>/`, holds positives and near misses and the exact expected findings.\n\n",
		registry.Version, len(all), counts[registry.RBAC], counts[registry.Path], counts[registry.Identity], counts[registry.Injection], counts[registry.AKS])
	b.WriteString("How severity is computed: each finding starts at its rule's base severity; a grant restricted by resourceNames goes down one level and does not go up for a cluster-wide scope (the named objects are what it reaches, at any scope), and named Secrets are LOW at most (INFO when they are in the namespace of the ServiceAccount reading them and a workload runs as it); a cluster-wide grant and a group subject each go up one (CRITICAL at most), and a grant confined to one ordinary namespace stays at HIGH at most (kube-system is not ordinary). Findings about platform-managed grants go to the infrastructure appendix: a grant is platform-managed only when it is recognised as one the platform creates, a binding of the upstream bootstrap policy captured from the API server or of the catalogue of AKS managed add-ons (services/risk-agent/rules/addons), with the same roleRef, naming the subject, through a role that grants nothing beyond the recorded rules; a namespace (kube-system) or a name (system:*, aks*) never makes it so, and system:masters is platform-managed only through the upstream cluster-admin binding. A catalogued add-on role holding more than its entry is reported as RBAC-035 naming the excess. A Role or RoleBinding never grants cluster-scoped resources, so rules on those never fire for them. A grant of every verb on every resource (RBAC-001) implies RBAC-004 and the permission rules RBAC-013 to RBAC-032 and RBAC-040; those are not repeated for it but folded into its finding (Finding.folded), and their controls count towards compliance status as the finding's own. A hit at INFO severity is informational: when every hit of a grant is INFO (a ServiceAccount's or a role's, never a person's or group's), the report lists the grant apart instead of as an entry of the reviewer's list, while report.json and SARIF keep its results and compliance status counts its controls like any other hit's.\n\n")
	fmt.Fprintf(&b, "Authorizer semantics follow the audited server's version: from Kubernetes 1.35 (`AuthorizePodWebsocketUpgradeCreatePermission`, beta and on by default; kubernetes/kubernetes#134577, KEP-4006) exec, attach and port-forward need `create` on pods/exec, pods/attach and pods/portforward, so a get-only grant is not reported as RBAC-006 or RBAC-023 on such a cluster; before 1.35 a websocket `get` sufficed and is reported. The version is the live API server's (discovery, /version), or for a snapshot file `--server-version`, else the highest kubelet version of the snapshot's Nodes (kubelets are never newer than the API server), else %s; the report's header says which version applied and where it came from.\n\n", "the stated default "+rules.DefaultServerVersion)
	b.WriteString("| ID | family | title | base severity | controls |\n|---|---|---|---|---|\n")
	for _, r := range all {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s | %s |\n", r.ID, strings.ToLower(r.ID), registry.FamilyName(r.Family), r.Title, severity(r), strings.Join(r.Controls, ", "))
	}
	b.WriteString("\nControls the rules map to; the report states a compliance status for each, not satisfied when a finding (or a rule hit folded into one) cites it:\n\n| control | title | rules |\n|---|---|---|\n")
	for _, c := range registry.Controls() {
		var ids []string
		for _, r := range all {
			if slices.Contains(r.Controls, c.GetId()) {
				ids = append(ids, r.ID)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.GetId(), c.GetTitle(), strings.Join(ids, ", "))
	}
	for _, r := range all {
		controls := make([]string, len(r.Controls))
		for i, c := range r.Controls {
			controls[i] = c + " (" + registry.ControlTitle(c) + ")"
		}
		fmt.Fprintf(&b, "\n## %s\n\n**%s**. Family: %s. Base severity %s. Controls: %s.\n\n%s\n\n", r.ID, r.Title, registry.FamilyName(r.Family), severity(r), strings.Join(controls, ", "), r.Rationale)
		if d := inject.Detects(r.ID); d != "" {
			fmt.Fprintf(&b, "How it is detected: %s\n\n", d)
		}
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
		fmt.Fprintf(&b, "Remediation: %s %s\n", r.Remediation, commandNote[r.Family])
		fmt.Fprintf(&b, "\nFixture: `services/risk-agent/%s/`.\n", r.Fixture())
	}
	b.WriteString(differences)
	return b.String()
}

// differences documents each deliberate change of severity or semantics
// from the prototype's rules (the catalogue before version 2026.12.1; the
// seed, /work/shared/seed, is an essay and fixes no severities).
const differences = `
## Differences from the prototype

The seed of the project (the essay "From Local to Trusted") fixes no rule severities, and neither does the RBAC risk reference the rules were written from (it says what each permission allows, not how bad it is); the prototype's severities are those of the catalogue before version 2026.12.1. The identity (ENTRA) and prompt-injection (INJ) rules keep the prototype's base severities (INJ-004, invisible or bidirectional Unicode, MEDIUM since it also mangles legitimate text; the other INJ rules HIGH). Each deliberate difference, and why:

| rule | prototype | now | reason |
|---|---|---|---|
| RBAC-003 | a grant of named Secrets went down one level, then up again for a cluster-wide scope or a group (MEDIUM to CRITICAL) | named Secrets are LOW at most, at any scope and for any subject | resourceNames confine the grant to the named objects whatever the scope; a cluster-wide grant of one named Secret is not a cluster-wide Secret reader |
| RBAC-003 | named Secrets of the subject's own namespace read by an installed component: as any named Secrets | INFO (an informational hit: in report.json, SARIF and compliance status, listed apart in the report, not an entry) when every matching rule names its Secrets, the grant is a RoleBinding in the ServiceAccount's own namespace, and a workload of the snapshot runs as that ServiceAccount, unless a name may be a ServiceAccount token Secret ("-token-" in it, or ending "-token"); LOW otherwise | that is how a component keeps its own certificate or password, and nobody would act on it; a grant in another namespace, cluster-wide, to a person or group, or to a ServiceAccount nothing runs as stays LOW. CIS 5.1.2 stays not satisfied while such a hit exists |
| all grant rules | resourceNames: -1, then +1 for a cluster-wide scope | resourceNames: -1, and no cluster-wide step | the same reason: a binding's scope does not widen a grant restricted to named objects (RBAC-018 with bind restricted to harmless roles, cluster-wide, is now MEDIUM, not HIGH) |
| RBAC-005 | pod create plus a read of named Secrets raised pod create to HIGH | only an unrestricted Secret read raises it | a read of named Secrets adds little to pod create |
| RBAC-004 | any '*' in a bound role: MEDIUM (HIGH cluster-wide) | full wildcard only when it writes in a built-in API group or every group; '*' writing only custom resource groups, or a read-only '*' reaching Secrets, LOW; a read-only '*' reaching no Secrets not reported | a read-only or CRD-only wildcard was reported as if it granted everything; the Secret read of a read-only '*' in core stays reported by RBAC-003 |
| RBAC-006, RBAC-023 | get on pods/exec, pods/attach or pods/portforward always counted | counts only before Kubernetes 1.35; the server version is recorded in the snapshot (default 1.37, stated in the report) | since 1.35 the API server authorizes the websocket upgrade as create (AuthorizePodWebsocketUpgradeCreatePermission, on by default): get alone gives no exec |
| RBAC-012 | a token automounted for a ServiceAccount holding any grant | only when a grant of the ServiceAccount has a finding; the hit joins that grant's entry | a grant that raises no finding (reads of non-sensitive objects, TokenReview or SubjectAccessReview creation, events) is what the workload calls the API for, so its token is "mounted where necessary"; the automount only amplifies a risky grant. CIS 5.1.6 is therefore not satisfied when a workload mounts the token of a ServiceAccount with any finding above INFO (see the next RBAC-012 row), and satisfied otherwise, tokens of harmless grants included |
| RBAC-035 | every dangerous permission a bootstrap role holds beyond upstream, whoever contributes it | a permission contributed only by ClusterRoles with an RBAC-036 finding is left to those findings (and named in the description); RBAC-035 is raised for what remains (the role's own extra rules, a bootstrap contributor's, a contributor RBAC-036 does not report), and not at all when nothing remains | admin and edit repeated, seen from the built-in role, what each aggregating role's RBAC-036 finding already says with its own fix (remove the label); both rules carry the same controls (CIS 5.1.1, CC6.3), so the compliance status is unchanged |
| RBAC-036 | only dangerous permissions aggregated into admin, edit or view | any write the built-in role lacks, on any API group: LOW (MEDIUM into view); dangerous additions stay MEDIUM; writes on the resources of a privileged controller present in the snapshot (RBAC-041) HIGH | every admin, editor or viewer in every namespace gets the write; the rules reference always said any |
| RBAC-036 | any write the built-in role lacks, LOW (MEDIUM into view) | INFO (informational, as for RBAC-003) when every added write is on a custom resource that only records results, from the declared table rules/inert.json with its public sources (wgpolicyk8s.io and openreports.io policy reports, Kyverno's ephemeral reports), nothing dangerous is added and no controller is reached | a forged or deleted policy report grants no access; a custom resource missing from the table may be one a controller acts on (cert-manager Certificates, Kyverno UpdateRequests) and stays LOW |
| RBAC-012 | only when a grant of the ServiceAccount has a finding | only when it has a finding above INFO | an informational hit is no risky grant for the token to amplify |
| RBAC-020 | built-in workload controllers only | also create on Tekton TaskRuns and PipelineRuns and Argo Workflows and CronWorkflows | their controllers run pods as any ServiceAccount of the namespace the resource names: indirect pod creation like a Deployment |
| RBAC-033, RBAC-034 | any grant to system:anonymous, system:unauthenticated (CRITICAL) or system:authenticated (HIGH) beyond the discovery roles at the base severity | a grant of nothing but get on named objects of a non-sensitive kind (no Secrets, subresources, wildcards or non-resource URLs) LOW | a public ConfigMap read by name is what such bindings are for (cluster-info in kube-public); the base severity stays for everything else, named Secrets included |
| PATH-001 | every path to cluster-admin CRITICAL | a path with a step that needs an object the snapshot cannot show (a legacy ServiceAccount token Secret: the audit never reads Secrets) is conditional, states its assumption and is HIGH | a path resting on an unproven assumption is rated below one whose every step is proven |
| RBAC-041, RBAC-042, RBAC-043 | not detected | HIGH, HIGH, MEDIUM base | escalation through a privileged controller, APIService redirection and Pod Security relabelling of a Namespace were missed |
| ENTRA-005, ENTRA-009 (CI/CD identity) | an identity is CI/CD when its name contains a word of a token list | the same list (ado, argo, argocd, azdo, buildkite, cd, ci, cicd, circleci, deploy, deployer, devops, flux, github, gitlab, jenkins, octopus, pipeline, pipelines, spinnaker, tekton, terraform), matched as a whole token of the name split at every character that is not a letter or digit; a ServiceAccount by its own name, a service principal that a user or group subject reaches by its display name in the directory; and, whatever the name, a service principal or managed identity whose federated credential trusts a pipeline's tokens (GitHub Actions, GitLab CI, Azure DevOps, Terraform Cloud), named as evidence in the finding | a word inside a longer one is not a pipeline (decide, cicada, accident, gitlabel); a federated credential says what runs as the identity better than its name does |
| ENTRA-005 | a CI/CD ServiceAccount with wildcard verbs | a CI/CD identity whose grant is RBAC-001 (cluster-admin, or '*' on every resource not restricted by resourceNames) or RBAC-009 (bind, escalate, impersonate); platform-managed grants left out | a deploy pipeline with '*' on the Deployments of its own namespace is doing its job, and the wildcard is reported by RBAC-004 and the capability rules; what makes a pipeline the owner of the cluster is cluster-admin or a verb that yields it |
| ENTRA-008 | a group subject: CRITICAL whatever its members' Azure routes; the command deleted the first route's assignment | CRITICAL for a standing admin role of an account that can sign in, or a group whose members hold a standing route; an eligible (PIM) assignment or a disabled account's assignment is reported but does not raise it; the command removes a route that works today, and an eligible assignment through an AdminRemove eligibility schedule request | a disabled account's eligibility was reported as a critical second path with "az role assignment delete" on a roleEligibilityScheduleInstance, which that command cannot delete; no route of it works until it is re-enabled and activated |
| ENTRA-009 | a service principal without a federated credential holding cluster access | a CI/CD service principal of an application (by name, or reaching the cluster through a CI/CD-named ServiceAccount) holding client secrets or certificates (keyCredentials; counts read, never the keys) and no federated credential | a managed identity has no stored credential to copy (Azure rotates it), and an application with neither secret nor certificate cannot sign in; a non-pipeline application's secret has no federated replacement to recommend and is an application-credential question, not a pipeline one (ENTRA-013, from catalogue 2026.12.5, reports the age and expiry of every secret and certificate of an application reaching the cluster, and secrets or certificates held beside a federated credential); a certificate's private key stored in a pipeline is as copyable as a secret (certificates were not read before catalogue 2026.12.4) |
`

// commandNote says what command each family's findings add to the advice.
var commandNote = map[registry.Family]string{
	registry.RBAC:      "Each finding carries the exact `kubectl` command for its role or binding.",
	registry.Path:      "Each finding carries the `kubectl` commands that open its first step's role and binding for editing.",
	registry.Identity:  "Each finding carries the exact command (`kubectl`, `az`) for its binding, group or identity.",
	registry.Injection: "Each finding carries the exact `kubectl` command for its annotation or label, or names the object or directory attribute to correct.",
}

func severity(r rules.Rule) string {
	return strings.TrimPrefix(r.Severity.String(), "SEVERITY_")
}
