package paths

import (
	"slices"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/rules"
)

// Abstract nodes of the routes through Azure.
const (
	adminCredKey   = "!az:admin-credential"
	userCredKey    = "!az:user-credential"
	runCmdKey      = "!az:run-command"
	assignKey      = "!az:assign"
	adminGroupsKey = "!az:admin-groups"
)

// eligibleAssumption is what every step of an eligible assignment's path
// needs: its holder has nothing until it activates it.
const eligibleAssumption = "the holder activates its eligible assignment through Privileged Identity Management (approval, MFA and justification as the role's PIM settings require)"

// adminGroupAssumption is what rewriting the cluster's admin groups needs
// to make its holder cluster-admin.
const adminGroupAssumption = "the holder is a member of an Entra group it can name as the cluster's admin group"

// azure is what the directory's chunks add to the escalation graph: one
// grant per Azure route into the cluster (access.AzureGrants decides them;
// data actions are Kubernetes rules, so their grants take every capability
// edge a binding would), and the steps of the routes that are not
// Kubernetes rules: the credentials and run command, and the writes that
// change who may use them.
type azure struct {
	cluster *secureauditv1.AksCluster
	grants  []*rules.Grant
	// assume is what every step of a grant needs (an eligible
	// assignment's activation).
	assume map[*rules.Grant]string
	// keys are the grant keys of the credential grants, shared with their
	// AKS-008 finding.
	keys map[*rules.Grant]string
	// assignments are the role assignments behind the grants.
	assignments map[*rules.Grant]*secureauditv1.AzureRoleAssignment
	// steps are the edges added after the capability edges.
	steps []azureStep
}

// azureStep is one route of an assignment's grant, by index into grants.
type azureStep struct {
	grant  int
	routes []secureauditv1.AzureRoute
	role   string // "Contributor on resource group rg"
}

// azureOf reads the routes through Azure from the directory's chunks; nil
// without an AKS cluster. Assignments are taken as access.AzureGrants
// takes them: whatever the role is called, by the routes its permissions
// open (the entra-agent decides them, its notActions and notDataActions
// subtracted: a role with '*' and listClusterAdminCredential among its
// notActions has no admin-credential route). The admin groups are left to
// AKS-008: membership is the whole path.
func azureOf(a *rules.Analysis, dir []*secureauditv1.DirectoryChunk) *azure {
	var cluster *secureauditv1.AksCluster
	for _, c := range dir {
		if cluster = c.GetAksCluster(); cluster != nil {
			break
		}
	}
	if cluster == nil {
		return nil
	}
	az := &azure{cluster: cluster, assume: map[*rules.Grant]string{}, keys: map[*rules.Grant]string{}, assignments: map[*rules.Grant]*secureauditv1.AzureRoleAssignment{}}
	byAssignment := map[string]int{} // lower-case assignment ID -> index of its cluster-wide grant
	add := func(g access.AzureGrant, sub *secureauditv1.Subject, namespace string, rs []*secureauditv1.PolicyRule) int {
		ref := &secureauditv1.BindingRef{Kind: secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT, Name: clipTo(g.Assignment.GetId(), 1024), Namespace: namespace}
		role := &secureauditv1.FindingRole{Kind: secureauditv1.RoleKind_ROLE_KIND_AZURE_ROLE, Name: clipTo(g.Assignment.GetRoleName(), 253)}
		gr := a.ExternalGrant(ref, role, sub, namespace, rs)
		az.assignments[gr] = g.Assignment
		if g.Assignment.GetEligible() {
			az.assume[gr] = eligibleAssumption
		}
		az.grants = append(az.grants, gr)
		return len(az.grants) - 1
	}
	for _, g := range access.AzureGrants(dir) {
		if g.Assignment == nil {
			continue // an admin group
		}
		if g.Credential {
			i := add(g, g.Subject, "", nil)
			az.keys[az.grants[i]] = g.Key()
			byAssignment[strings.ToLower(g.Assignment.GetId())] = i
			az.steps = append(az.steps, azureStep{grant: i, routes: g.Assignment.GetRoutes(), role: roleAt(g.Assignment, cluster)})
			continue
		}
		add(g, g.Subject, g.Binding.Namespace, g.Rules)
	}
	// The writes that change who may use the routes: role assignments and
	// the cluster's configuration, at the cluster or above (at a namespace
	// they assign no more than that namespace).
	subject := access.AzureSubjects(dir)
	seen := map[string]bool{}
	for _, c := range dir {
		for _, as := range c.GetRoleAssignments() {
			id := strings.ToLower(as.GetId())
			if seen[id] || access.ScopeNamespace(as.GetScope(), cluster.GetId()) != "" {
				continue
			}
			seen[id] = true
			if !slices.Contains(as.GetRoutes(), secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE) &&
				!slices.Contains(as.GetRoutes(), secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE) {
				continue
			}
			i, ok := byAssignment[id]
			if !ok {
				i = add(access.AzureGrant{Assignment: as}, subject(as), "", nil)
				byAssignment[id] = i
				az.steps = append(az.steps, azureStep{grant: i, routes: as.GetRoutes(), role: roleAt(as, cluster)})
			}
		}
	}
	return az
}

// edges adds the steps of the routes that are not Kubernetes rules, as the
// cluster's configuration (read from ARM) makes them work. offset is the
// index of the first grant through Azure among the graph's grants.
func (az *azure) edges(g *graph, admin, offset int) {
	c := az.cluster
	local, entra, azRBAC := c.GetLocalAccountsEnabled(), c.GetManagedEntra(), c.GetAzureRbac()
	runCmd := !c.GetRunCommandDisabled()
	// node returns an abstract node, adding its way on the first time.
	node := func(key, name string, on func(v int)) int {
		v, ok := g.lookup(key)
		if !ok {
			v = g.node(key, name, nil)
			on(v)
		}
		return v
	}
	adminCred := func() int {
		return node(adminCredKey, "the cluster's admin credential (listClusterAdminCredential)", func(v int) {
			g.edge(v, admin, "is a client certificate in system:masters, usable while local accounts are enabled (the cluster's ARM configuration: disableLocalAccounts false)", nil, nil)
		})
	}
	for _, st := range az.steps {
		i := offset + st.grant
		gr, u := g.grants[i], g.grantNode[i]
		assume := az.assume[gr]
		has := func(r secureauditv1.AzureRoute) bool { return slices.Contains(st.routes, r) }
		step := func(to int, text string, extra string) {
			g.conditional(u, to, text+" ("+st.role+")", both(assume, extra), gr, nil)
		}
		if local && has(secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL) {
			step(adminCred(), "can call listClusterAdminCredential", "")
		}
		if local && !entra && has(secureauditv1.AzureRoute_AZURE_ROUTE_USER_CREDENTIAL) {
			v := node(userCredKey, "the cluster's user credential (listClusterUserCredential)", func(v int) {
				g.edge(v, admin, "is a client certificate in system:masters on a cluster without Entra integration (local accounts enabled)", nil, nil)
			})
			step(v, "can call listClusterUserCredential", "")
		}
		if local && runCmd && has(secureauditv1.AzureRoute_AZURE_ROUTE_RUN_COMMAND) {
			v := node(runCmdKey, "a command run in the cluster through ARM (runCommand)", func(v int) {
				g.edge(v, admin, "runs kubectl with the cluster's admin credential (local accounts enabled, run command not disabled)", nil, nil)
			})
			step(v, "can call runCommand", "")
		}
		if !local && has(secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE) && has(secureauditv1.AzureRoute_AZURE_ROUTE_ADMIN_CREDENTIAL) {
			step(admin, "can enable local accounts (managedClusters/write) and then call listClusterAdminCredential: a client certificate in system:masters", "")
		}
		if has(secureauditv1.AzureRoute_AZURE_ROUTE_ROLE_ASSIGNMENT_WRITE) && (local || azRBAC) {
			v := node(assignKey, "an Azure role of its choosing, assigned to itself at the cluster", func(v int) {
				if local {
					g.edge(v, adminCred(), "includes Azure Kubernetes Service Cluster Admin Role, which may call listClusterAdminCredential", nil, nil)
				}
				if azRBAC {
					g.edge(v, admin, "includes Azure Kubernetes Service RBAC Cluster Admin: every Kubernetes data action through Azure RBAC for Kubernetes (enabled on the cluster)", nil, nil)
				}
			})
			step(v, "can write role assignments (Microsoft.Authorization/roleAssignments/write)", "")
		}
		if entra && has(secureauditv1.AzureRoute_AZURE_ROUTE_CLUSTER_WRITE) {
			v := node(adminGroupsKey, "the cluster's admin groups (aadProfile.adminGroupObjectIDs)", func(v int) {
				g.edge(v, admin, "make their members cluster-admin without any binding", nil, nil)
			})
			step(v, "can name an Entra group of its choosing as one (managedClusters/write)", adminGroupAssumption)
		}
	}
}

// azureBinding reports whether a binding is a grant through Azure.
func azureBinding(b *secureauditv1.BindingRef) bool {
	return b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_AZURE_ROLE_ASSIGNMENT ||
		b.GetKind() == secureauditv1.BindingKind_BINDING_KIND_AKS_ADMIN_GROUP
}

// azureRemediation breaks a path that starts with a grant through Azure,
// the role assignment a: remove it (an eligible one through Privileged
// Identity Management), or narrow its role.
func azureRemediation(gr *rules.Grant, sub *secureauditv1.Subject, a *secureauditv1.AzureRoleAssignment) string {
	id := gr.Binding.GetName()
	if a.GetEligible() {
		return Rule.Remediation + " Step 1 is " + rules.SubjectText(sub) + "'s eligible Azure role assignment " + id + " (" + roleText(gr.Role) +
			"): remove the eligibility, or narrow the role, in Privileged Identity Management (Azure resources > Eligible assignments).\n" +
			access.RemoveCommand(a)
	}
	return Rule.Remediation + " Step 1 is " + rules.SubjectText(sub) + "'s Azure role assignment " + id + " (" + roleText(gr.Role) +
		"): remove it, narrow the role (a custom role without the action step 1 uses), or make it eligible under Privileged Identity Management.\n" +
		"az role assignment delete --ids " + id
}

// roleAt names an assignment's role at its scope, as "Contributor on
// resource group rg" ("(eligible)" added for an eligible one).
func roleAt(a *secureauditv1.AzureRoleAssignment, c *secureauditv1.AksCluster) string {
	s := a.GetRoleName() + " on " + access.ScopeName(a.GetScope(), c.GetId())
	if a.GetEligible() {
		s += ", eligible"
	}
	return s
}
