package aks

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/registry"
)

// maxNamed bounds the assignments a description names.
const maxNamed = 20

// Cluster returns the AKS cluster's configuration carried by the directory
// chunks (the first that has one), nil when none does.
func Cluster(dir []*secureauditv1.DirectoryChunk) *secureauditv1.AksCluster {
	for _, c := range dir {
		if c.GetAksCluster() != nil {
			return c.GetAksCluster()
		}
	}
	return nil
}

// Evaluate runs the AKS catalogue over the cluster configuration and role
// assignments of the directory chunks and returns the findings sorted by
// rule ID (AKS-008 by grant). Without a cluster it returns none.
func Evaluate(dir []*secureauditv1.DirectoryChunk) []*secureauditv1.Finding {
	c := Cluster(dir)
	if c == nil {
		return nil
	}
	var assignments []*secureauditv1.AzureRoleAssignment
	seen := map[string]bool{}
	for _, ch := range dir {
		for _, a := range ch.GetRoleAssignments() {
			if !seen[strings.ToLower(a.GetId())] {
				seen[strings.ToLower(a.GetId())] = true
				assignments = append(assignments, a)
			}
		}
	}
	slices.SortFunc(assignments, func(a, b *secureauditv1.AzureRoleAssignment) int {
		return cmp.Or(cmp.Compare(a.GetScope(), b.GetScope()), cmp.Compare(a.GetRoleName(), b.GetRoleName()), cmp.Compare(a.GetId(), b.GetId()))
	})
	e := &evaluator{c: c, az: "az aks update -g " + resourceGroup(c.GetId()) + " -n " + cmp.Or(c.GetName(), clusterName(c.GetId()))}
	if !c.GetKubernetesRbac() {
		e.add(NoKubernetesRBAC, "", "")
	}
	if c.GetLocalAccountsEnabled() {
		holders := holding(assignments, secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL)
		sev, reason, detail := secureauditv1.Severity_SEVERITY_UNSPECIFIED, "", " No role assignment read at the cluster or above lets anyone list the admin credential today; any future Owner or Contributor will."
		if len(holders) > 0 {
			sev = secureauditv1.Severity_SEVERITY_CRITICAL
			reason = fmt.Sprintf("base HIGH, raised: %d role %s can list the admin credential now", len(holders), plural(len(holders), "assignment", "assignments"))
			detail = " Who can list it now: " + describe(holders) + "."
		}
		e.addSev(LocalAccounts, sev, reason, detail, e.az+" --disable-local-accounts")
	}
	if !c.GetManagedEntra() {
		e.add(NoEntra, "", e.az+" --enable-aad --aad-admin-group-object-ids <admin-group-object-id>")
	} else if !c.GetAzureRbac() {
		e.add(NoAzureRBAC, "", e.az+" --enable-azure-rbac")
	}
	if !c.GetPrivateCluster() && open(c.GetAuthorizedIpRanges()) {
		detail := " Authorized IP ranges: none."
		if len(c.GetAuthorizedIpRanges()) > 0 {
			detail = " Authorized IP ranges: " + strings.Join(c.GetAuthorizedIpRanges(), ", ") + ", which admit every address."
		}
		e.add(PublicAPIServer, detail, e.az+" --api-server-authorized-ip-ranges <admin-network-CIDRs>")
	}
	if c.GetPodIdentityEnabled() {
		e.add(PodIdentityAddon, "", e.az+" --disable-pod-identity")
	}
	if !c.GetOidcIssuerEnabled() || !c.GetWorkloadIdentityEnabled() {
		var off []string
		if !c.GetOidcIssuerEnabled() {
			off = append(off, "the OIDC issuer")
		}
		if !c.GetWorkloadIdentityEnabled() {
			off = append(off, "workload identity")
		}
		e.add(NoWorkloadID, " Not enabled: "+strings.Join(off, " and ")+".", e.az+" --enable-oidc-issuer --enable-workload-identity")
	}
	e.azureAdmins(dir)
	e.standing(dir, assignments)
	return e.out
}

// azureAdmins reports every grant through Azure that makes its holder
// cluster-admin (access.AzureGrants decides what each route gives on this
// cluster), one finding per grant, a group's raised one level.
func (e *evaluator) azureAdmins(dir []*secureauditv1.DirectoryChunk) {
	// A service principal holding the route is named as one, never shown
	// as a person.
	apps := servicePrincipals(dir)
	for _, g := range access.AzureGrants(dir) {
		// An eligible assignment (PIM) gives nothing until activated: the
		// access review lists it as eligible.
		if g.Binding.Eligible || g.Binding.Namespace != "" || !everything(g.Rules) {
			continue
		}
		r := ruleByID(AzureAdmin)
		sev, reason := r.Severity, "base HIGH"
		switch {
		case g.Binding.Kind == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP:
			// The admin group is AKS's intended break-glass route: its
			// members are to be reviewed, not the route removed.
			sev, reason = secureauditv1.Severity_SEVERITY_MEDIUM, "base HIGH, lowered: the cluster's admin group is the intended break-glass route; review its members"
		case g.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
			sev, reason = secureauditv1.Severity_SEVERITY_CRITICAL, "base HIGH, raised: a group reaches every member"
		}
		fix := "az role assignment delete --ids " + g.Binding.Name
		if g.Binding.Kind == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP {
			fix = e.az + " --aad-admin-group-object-ids <reviewed-break-glass-group>"
		}
		key := adminKey(g)
		role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: clipN(g.Binding.Role, 253)}
		if g.Binding.Kind == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP {
			role = &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"}
		}
		f := r.Finding(registry.Hit{
			ID:             key,
			Severity:       sev,
			SeverityReason: reason,
			Scope:          &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
			Description:    r.Rationale + " Route: " + g.Route + ".",
			Remediation:    r.Remediation + "\n" + fix,
		})
		f.GrantKey = key
		f.Subject = &secureauditv1.SubjectRef{Kind: g.Subject.GetKind(), Name: clipN(g.Subject.GetName(), 1024)}
		if name, ok := apps[strings.ToLower(g.Subject.GetName())]; ok && g.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_USER {
			f.Subject.DisplayName = clipN(name, 256)
			f.Subject.ServicePrincipal = true
		}
		f.Binding = &secureauditv1.BindingRef{Kind: g.Binding.Kind, Name: clipN(g.Binding.Name, 1024)}
		f.Role = role
		f.MatchedRules = g.Rules
		e.out = append(e.out, f)
	}
}

// adminKey is the grant key of a cluster-admin grant through Azure
// (access.AzureGrant.Key): AKS-008, AKS-009 and a path starting with the
// grant share it, so that the report lists them as one entry.
func adminKey(g access.AzureGrant) string { return g.Key() }

// servicePrincipals maps the lower-cased object ID of every service
// principal of the directory's answer to its display name.
func servicePrincipals(dir []*secureauditv1.DirectoryChunk) map[string]string {
	out := map[string]string{}
	for _, c := range dir {
		for _, sp := range c.GetServicePrincipals() {
			out[strings.ToLower(sp.GetId())] = sp.GetDisplayName()
		}
	}
	return out
}

// isApp reports whether id is a service principal of apps.
func isApp(apps map[string]string, id string) bool {
	_, ok := apps[id]
	return ok
}

// standing reports, AKS-009, the people who are cluster-admin through
// Azure all the time where eligible access under Privileged Identity
// Management would do: a user or group holding an active assignment (not
// a PIM activation) that makes it cluster-admin (the same grants AKS-008
// reports, service principals left out: automation cannot activate), and
// each admin group's standing members that are users (members through a
// PIM for Groups activation left out). The finding is
// raised to HIGH when PIM is already in use for this cluster (an eligible
// assignment or eligible group member is in the answer): eligibility is
// then demonstrably available.
func (e *evaluator) standing(dir []*secureauditv1.DirectoryChunk, assignments []*secureauditv1.AzureRoleAssignment) {
	users := map[string]*secureauditv1.DirectoryUser{}
	groups := map[string]*secureauditv1.DirectoryGroup{}
	sps := servicePrincipals(dir)
	eligible := 0
	for _, c := range dir {
		for _, u := range c.GetUsers() {
			users[strings.ToLower(u.GetId())] = u
		}
		for _, g := range c.GetGroups() {
			groups[strings.ToLower(g.GetId())] = g
			eligible += len(g.GetEligibleMemberIds())
		}
	}
	for _, a := range assignments {
		if a.GetEligible() {
			eligible++
		}
	}
	r := ruleByID(StandingAdmin)
	sev, reason := r.Severity, "base MEDIUM"
	if eligible > 0 {
		sev = secureauditv1.Severity_SEVERITY_HIGH
		reason = fmt.Sprintf("base MEDIUM, raised: PIM is already in use for this cluster (%d eligible %s), so eligible access is available", eligible, plural(eligible, "assignment or membership", "assignments or memberships"))
	}
	for _, g := range access.AzureGrants(dir) {
		if g.Binding.Eligible || g.Activated || g.Binding.Namespace != "" || !everything(g.Rules) {
			continue
		}
		var detail, fix string
		switch g.Binding.Kind {
		case secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP:
			gr, ok := groups[g.Binding.Name]
			if !ok {
				continue // unresolved: its members are unknown
			}
			var people []string
			for _, id := range gr.GetMemberIds() {
				if slices.ContainsFunc(gr.GetActivatedMemberIds(), func(a string) bool { return strings.EqualFold(a, id) }) {
					continue // a PIM for Groups activation: time-bound
				}
				if u, ok := users[strings.ToLower(id)]; ok {
					people = append(people, u.GetUserPrincipalName())
				}
			}
			if len(people) == 0 {
				continue
			}
			slices.Sort(people)
			if len(people) > maxNamed {
				people = append(people[:maxNamed], fmt.Sprintf("and %d more", len(people)-maxNamed))
			}
			detail = " Standing members of the admin group " + cmp.Or(gr.GetDisplayName(), gr.GetId()) + ": " + strings.Join(people, ", ") + "."
			fix = "Privileged Identity Management > Groups > " + cmp.Or(gr.GetDisplayName(), gr.GetId()) + " > Assignments: add each member as Eligible, then remove the standing membership (az ad group member remove --group " + gr.GetId() + " --member-id <object-id>)"
		default:
			a := g.Assignment
			id := strings.ToLower(a.GetPrincipalId())
			if strings.EqualFold(a.GetPrincipalType(), "ServicePrincipal") || isApp(sps, id) {
				continue
			}
			detail = " Standing: " + g.Route + ", through " + describe([]*secureauditv1.AzureRoleAssignment{a}) + "."
			fix = "az rest --method put --url 'https://management.azure.com" + a.GetScope() + "/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/<new-guid>?api-version=2020-10-01' " +
				"--body '{\"properties\":{\"principalId\":\"" + a.GetPrincipalId() + "\",\"roleDefinitionId\":\"" + cmp.Or(a.GetRoleDefinitionId(), "<role-definition-id of "+a.GetRoleName()+">") + "\",\"requestType\":\"AdminAssign\",\"scheduleInfo\":{\"expiration\":{\"type\":\"AfterDuration\",\"duration\":\"P365D\"}}}}'\n" +
				"az role assignment delete --ids " + a.GetId()
		}
		// The finding's own ID; its grant key is AKS-008's for the grant.
		key := adminKey(g)
		sum := sha256.Sum256([]byte(StandingAdmin + "\x00" + g.Binding.String() + "\x00" + g.Subject.GetName()))
		role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: clipN(g.Binding.Role, 253)}
		if g.Binding.Kind == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP {
			role = &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_CLUSTER_ROLE, Name: "cluster-admin"}
		}
		f := r.Finding(registry.Hit{
			ID:             hex.EncodeToString(sum[:8]),
			Severity:       sev,
			SeverityReason: reason,
			Scope:          &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
			Description:    clip(r.Rationale + detail),
			Remediation:    clip(r.Remediation + "\n" + fix),
		})
		f.GrantKey = key
		f.Subject = &secureauditv1.SubjectRef{Kind: g.Subject.GetKind(), Name: clipN(g.Subject.GetName(), 1024)}
		f.Binding = &secureauditv1.BindingRef{Kind: g.Binding.Kind, Name: clipN(g.Binding.Name, 1024)}
		f.Role = role
		f.MatchedRules = g.Rules
		e.out = append(e.out, f)
	}
}

// everything reports whether rules grant every verb on every resource.
func everything(rules []*secureauditv1.PolicyRule) bool {
	return slices.ContainsFunc(rules, func(r *secureauditv1.PolicyRule) bool {
		return slices.Contains(r.GetVerbs(), "*") && slices.Contains(r.GetApiGroups(), "*") && slices.Contains(r.GetResources(), "*")
	})
}

// clipN cuts s to n bytes on a rune boundary.
func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

type evaluator struct {
	c   *secureauditv1.AksCluster
	az  string // the az aks update command of the cluster
	out []*secureauditv1.Finding
}

// add appends a finding of rule id at its base severity.
func (e *evaluator) add(id, detail, fix string) {
	e.addSev(id, secureauditv1.Severity_SEVERITY_UNSPECIFIED, "", detail, fix)
}

// addSev appends a finding of rule id about the cluster, at the rule's
// base severity unless sev is given.
func (e *evaluator) addSev(id string, sev secureauditv1.Severity, reason, detail, fix string) {
	r := ruleByID(id)
	remediation := r.Remediation
	if fix != "" {
		remediation += "\n" + fix
	}
	sum := sha256.Sum256([]byte(id + "\x00" + strings.ToLower(e.c.GetId())))
	key := hex.EncodeToString(sum[:8])
	f := r.Finding(registry.Hit{
		ID:             key,
		Severity:       sev,
		SeverityReason: reason,
		Scope:          &secureauditv1.Scope{Level: secureauditv1.ScopeLevel_SCOPE_LEVEL_CLUSTER},
		Description:    r.Rationale + " Cluster " + e.c.GetId() + "." + detail,
		Remediation:    remediation,
	})
	f.GrantKey = key // each setting is an entry of its own
	e.out = append(e.out, f)
}

// open reports whether authorized IP ranges leave the API server open to
// every address: none given, or one that admits everything.
func open(ranges []string) bool {
	return len(ranges) == 0 || slices.ContainsFunc(ranges, func(r string) bool {
		return r == "0.0.0.0/0" || r == "::/0" || r == "0.0.0.0"
	})
}

// holding returns the active assignments that open route r (an eligible
// one opens nothing until activated).
func holding(as []*secureauditv1.AzureRoleAssignment, r secureauditv1.AzureRoute) []*secureauditv1.AzureRoleAssignment {
	var out []*secureauditv1.AzureRoleAssignment
	for _, a := range as {
		if !a.GetEligible() && slices.Contains(a.GetRoutes(), r) {
			out = append(out, a)
		}
	}
	return out
}

// describe names assignments as "<type> <principal> holds "<role>" at <scope>".
func describe(as []*secureauditv1.AzureRoleAssignment) string {
	parts := make([]string, 0, min(len(as), maxNamed+1))
	for i, a := range as {
		if i == maxNamed {
			parts = append(parts, fmt.Sprintf("and %d more", len(as)-maxNamed))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s holds %q at %s", cmp.Or(a.GetPrincipalType(), "principal"), a.GetPrincipalId(), a.GetRoleName(), a.GetScope()))
	}
	return strings.Join(parts, "; ")
}

// resourceGroup returns the resource group of an ARM resource ID.
func resourceGroup(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return "<resource-group>"
}

// clusterName returns the last segment of an ARM resource ID.
func clusterName(id string) string {
	return id[strings.LastIndex(id, "/")+1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// clip cuts s to the 4096 bytes a finding's text may hold, on a rune
// boundary.
func clip(s string) string {
	const n = 4096
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
