package tenant

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// managedCluster reads the cluster's access configuration and resolves
// its admin groups, whose members are cluster-admin without any binding.
func (r *run) managedCluster(ctx context.Context) {
	id := r.scope.parsed
	var resp armcontainerservice.ManagedClustersClientGetResponse
	err := r.call(ctx, func() (err error) {
		resp, err = r.scope.clusters.Get(ctx, id.ResourceGroupName, id.Name, nil)
		return err
	})
	if err != nil {
		r.fail("managed cluster "+r.scope.id, err)
		return
	}
	c := clusterOf(r.scope.id, resp.ManagedCluster)
	r.mu.Lock()
	r.cluster = c
	r.mu.Unlock()
	for _, g := range c.GetAdminGroupObjectIds() {
		r.spawn(func() {
			found, err := r.group(ctx, g)
			switch {
			case err != nil:
				r.fail("admin group "+g, err)
			case !found:
				r.notFound(&secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: g})
			}
		})
	}
}

// clusterOf keeps what the audit reads of a managed cluster. The AAD
// profile's legacy serverAppSecret is never read.
func clusterOf(id string, mc armcontainerservice.ManagedCluster) *secureauditv1.AksCluster {
	c := &secureauditv1.AksCluster{Id: id, Name: clip(deref(mc.Name), 256), LocalAccountsEnabled: true}
	p := mc.Properties
	if p == nil {
		return c
	}
	c.KubernetesVersion = clip(cmp.Or(deref(p.CurrentKubernetesVersion), deref(p.KubernetesVersion)), 64)
	c.LocalAccountsEnabled = !deref(p.DisableLocalAccounts)
	c.KubernetesRbac = deref(p.EnableRBAC)
	if a := p.AADProfile; a != nil {
		c.ManagedEntra = deref(a.Managed)
		c.AzureRbac = deref(a.EnableAzureRBAC)
		for _, g := range a.AdminGroupObjectIDs {
			if g != nil && isGUID(*g) && len(c.AdminGroupObjectIds) < 100 {
				c.AdminGroupObjectIds = append(c.AdminGroupObjectIds, lower(*g))
			}
		}
	}
	if a := p.APIServerAccessProfile; a != nil {
		c.PrivateCluster = deref(a.EnablePrivateCluster)
		c.RunCommandDisabled = deref(a.DisableRunCommand)
		for _, ip := range a.AuthorizedIPRanges {
			if ip != nil && *ip != "" && len(c.AuthorizedIpRanges) < 200 {
				c.AuthorizedIpRanges = append(c.AuthorizedIpRanges, clip(*ip, 64))
			}
		}
	}
	if o := p.OidcIssuerProfile; o != nil {
		c.OidcIssuerEnabled = deref(o.Enabled)
	}
	if sp := p.SecurityProfile; sp != nil && sp.WorkloadIdentity != nil {
		c.WorkloadIdentityEnabled = deref(sp.WorkloadIdentity.Enabled)
	}
	if pi := p.PodIdentityProfile; pi != nil {
		c.PodIdentityEnabled = deref(pi.Enabled)
	}
	return c
}

// roleAssignments lists every role assignment at the cluster's scope,
// above it (its resource group, subscription and management groups) and
// below it (its namespaces, .../managedClusters/NAME/namespaces/NS: the
// listing has no atScope() filter), reads each role definition once, and
// keeps the assignments whose role opens a route into the cluster
// (directory.Routes), whatever the role is called. Their principals are
// resolved: users, groups (expanded) and service principals.
func (r *run) roleAssignments(ctx context.Context) {
	pager := r.scope.assignments.NewListForScopePager(strings.TrimPrefix(r.scope.id, "/"), nil)
	var out []*secureauditv1.AzureRoleAssignment
	for pager.More() {
		var page armauthorization.RoleAssignmentsClientListForScopeResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			r.fail("role assignments at "+r.scope.id, err)
			break
		}
		for _, a := range page.Value {
			p := a.Properties
			if a.ID == nil || p == nil {
				continue
			}
			if ra := r.assignment(ctx, *a.ID, p.PrincipalID, p.PrincipalType, p.RoleDefinitionID, p.Scope); ra != nil {
				out = append(out, ra)
			}
		}
	}
	r.keep(ctx, out)
}

// assignment is an assignment (active or eligible) of a role at a scope
// as the audit keeps it: nil when it lacks a field, is on another
// resource than the cluster, or its role opens no route into the cluster
// (a role definition that cannot be read is a lookup error).
func (r *run) assignment(ctx context.Context, id string, principal *string, typ *armauthorization.PrincipalType, roleDef, scope *string) *secureauditv1.AzureRoleAssignment {
	if principal == nil || roleDef == nil || scope == nil || !isGUID(*principal) {
		return nil
	}
	if !directory.InCluster(*scope, r.scope.id) {
		return nil // below the resource group but on another resource
	}
	def, err := r.roleDefinition(ctx, *roleDef)
	if err != nil {
		r.fail("role definition "+*roleDef, err)
		return nil
	}
	if len(def.routes) == 0 {
		return nil
	}
	ra := &secureauditv1.AzureRoleAssignment{
		Id: clip(id, 1024), PrincipalId: lower(*principal), RoleName: def.name, Scope: clip(*scope, 1024),
		RoleDefinitionId: clip(*roleDef, 1024), CustomRole: def.custom, Permissions: def.perms, Routes: def.routes,
	}
	if typ != nil {
		ra.PrincipalType = clip(string(*typ), 64)
	}
	return ra
}

// keep adds assignments to the answer and resolves their principals, each
// once.
func (r *run) keep(ctx context.Context, out []*secureauditv1.AzureRoleAssignment) {
	r.mu.Lock()
	r.assigned = append(r.assigned, out...)
	r.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range out {
		if seen[a.GetPrincipalId()] {
			continue
		}
		seen[a.GetPrincipalId()] = true
		r.spawn(func() { r.assignee(ctx, a) })
	}
}

// roleEligibilities lists Privileged Identity Management's eligible role
// assignments (roleEligibilityScheduleInstances) at, above and below the
// cluster's scope, as roleAssignments does the active ones, and keeps
// those whose role opens a route into the cluster, marked eligible with
// their end. Only current instances count (status Provisioned, or none
// given).
func (r *run) roleEligibilities(ctx context.Context) {
	pager := r.s.eligibilities.NewListForScopePager(strings.TrimPrefix(r.scope.id, "/"), nil)
	var out []*secureauditv1.AzureRoleAssignment
	for pager.More() {
		var page armauthorization.RoleEligibilityScheduleInstancesClientListForScopeResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			r.fail("role eligibility schedule instances at "+r.scope.id, err)
			break
		}
		for _, e := range page.Value {
			p := e.Properties
			if e.ID == nil || p == nil || (p.Status != nil && *p.Status != armauthorization.StatusProvisioned) {
				continue
			}
			ra := r.assignment(ctx, *e.ID, p.PrincipalID, p.PrincipalType, p.RoleDefinitionID, p.Scope)
			if ra == nil {
				continue
			}
			ra.Eligible = true
			if p.EndDateTime != nil && p.EndDateTime.Before(maxTime) {
				ra.EligibleUntil = timestamppb.New(*p.EndDateTime)
			}
			out = append(out, ra)
		}
	}
	r.keep(ctx, out)
}

// maxTime bounds the times the contract accepts (2200-01-01).
var maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// activationsOf lists the role assignment schedule instances at, above and
// below the cluster's scope and records the role assignments that are PIM
// activations (assignmentType Activated, by originRoleAssignmentId): an
// active assignment among them is time-bound, not standing.
func (r *run) activationsOf(ctx context.Context) {
	pager := r.s.activations.NewListForScopePager(strings.TrimPrefix(r.scope.id, "/"), nil)
	for pager.More() {
		var page armauthorization.RoleAssignmentScheduleInstancesClientListForScopeResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			r.fail("role assignment schedule instances at "+r.scope.id, err)
			return
		}
		r.mu.Lock()
		for _, i := range page.Value {
			p := i.Properties
			if p == nil || p.OriginRoleAssignmentID == nil || p.AssignmentType == nil || *p.AssignmentType != armauthorization.AssignmentTypeActivated {
				continue
			}
			r.activated[lower(*p.OriginRoleAssignmentID)] = true
		}
		r.mu.Unlock()
	}
}

// assignee resolves the principal of a role assignment by its type (a
// missing type is tried as a user, a group, then a service principal).
func (r *run) assignee(ctx context.Context, a *secureauditv1.AzureRoleAssignment) {
	id := a.GetPrincipalId()
	var found bool
	var err error
	switch strings.ToLower(a.GetPrincipalType()) {
	case "user":
		found, err = r.user(ctx, id)
	case "group":
		found, err = r.group(ctx, id)
	case "serviceprincipal":
		found, err = r.servicePrincipal(ctx, id)
	default:
		for _, f := range []func(context.Context, string) (bool, error){r.user, r.group, r.servicePrincipal} {
			if found, err = f(ctx, id); found || err != nil {
				break
			}
		}
	}
	switch {
	case err != nil:
		r.fail("principal "+id+" of role assignment "+a.GetId(), err)
	case !found:
		kind := secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER
		if strings.EqualFold(a.GetPrincipalType(), "group") {
			kind = secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP
		}
		r.notFound(&secureauditv1.Principal{Kind: kind, Name: id})
	}
}

// roleDefinition is what the audit keeps of an Azure role definition.
type roleDefinition struct {
	name   string
	custom bool
	perms  []*secureauditv1.AzureRolePermission
	routes []secureauditv1.AzureRoute
}

// roleDefinition reads a role definition, cached in r.defs (for the
// Source's life in a Resolve).
func (r *run) roleDefinition(ctx context.Context, id string) (*roleDefinition, error) {
	if v, ok := r.defs.Load(lower(id)); ok {
		return v.(*roleDefinition), nil
	}
	var resp armauthorization.RoleDefinitionsClientGetByIDResponse
	err := r.call(ctx, func() (err error) {
		resp, err = r.s.definitions.GetByID(ctx, strings.TrimPrefix(id, "/"), nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	p := resp.Properties
	if p == nil || p.RoleName == nil {
		return nil, fmt.Errorf("role definition %s has no name", id)
	}
	def := &roleDefinition{name: clip(*p.RoleName, 256), custom: strings.EqualFold(deref(p.RoleType), "CustomRole")}
	for _, perm := range p.Permissions {
		if perm == nil || len(def.perms) == 100 {
			continue
		}
		def.perms = append(def.perms, &secureauditv1.AzureRolePermission{
			Actions: operations(perm.Actions), NotActions: operations(perm.NotActions),
			DataActions: operations(perm.DataActions), NotDataActions: operations(perm.NotDataActions),
		})
	}
	def.routes = directory.Routes(def.perms)
	r.defs.Store(lower(id), def)
	return def, nil
}

// operations keeps at most 1000 non-empty operation patterns.
func operations(ops []*string) []string {
	var out []string
	for _, o := range ops {
		if o != nil && *o != "" && len(out) < 1000 {
			out = append(out, clip(*o, 512))
		}
	}
	return out
}

// ExcessPermissions returns the Graph application permissions (the roles
// claim of the agent's own Graph access token) beyond the allowed set,
// sorted. It reads the token's claims without verifying its signature: the
// token comes from Entra over TLS and is only inspected, never trusted for
// anything else.
func (s *Source) ExcessPermissions(ctx context.Context) ([]string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.graphScope}})
	if err != nil {
		return nil, fmt.Errorf("get graph token: %w", err)
	}
	roles, err := tokenRoles(tok.Token)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, role := range roles {
		if !slices.ContainsFunc(s.cfg.Allowed, func(a string) bool { return strings.EqualFold(a, role) }) {
			out = append(out, role)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// tokenRoles returns the roles claim of a JWT.
func tokenRoles(jwt string) ([]string, error) {
	c, err := tokenClaims(jwt)
	return c.Roles, err
}

// claims are the access token claims the agent reads: the application
// roles it was granted and the tenant that issued it.
type claims struct {
	Roles []string `json:"roles"`
	TID   string   `json:"tid"`
	OID   string   `json:"oid"`
}

// tokenClaims decodes the claims of a JWT access token. The signature is
// not checked: the token comes from the credential, over TLS, and is only
// read to report what it grants.
func tokenClaims(jwt string) (claims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return claims{}, fmt.Errorf("access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return claims{}, fmt.Errorf("decode access token claims: %w", err)
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return claims{}, fmt.Errorf("parse access token claims: %w", err)
	}
	return c, nil
}

// denyAssignments lists the deny assignments at, above and below the
// cluster's scope (Microsoft.Authorization/denyAssignments/read, which
// Reader holds) and keeps those with a permission block that denies
// something: principals and excluded principals by object ID, the
// permission blocks without a condition (a condition the audit cannot
// evaluate is not counted as denying). At most
// directory.MaxDenyAssignments are kept; beyond that the answer is
// partial.
func (r *run) denyAssignments(ctx context.Context) {
	pager := r.scope.denies.NewListForScopePager(strings.TrimPrefix(r.scope.id, "/"), nil)
	var out []*secureauditv1.AzureDenyAssignment
	for pager.More() {
		var page armauthorization.DenyAssignmentsClientListForScopeResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			r.fail("deny assignments at "+r.scope.id, err)
			break
		}
		for _, d := range page.Value {
			if da := denyOf(d, r.scope.id, r.denyGroups); da != nil {
				out = append(out, da)
			}
		}
	}
	if len(out) > directory.MaxDenyAssignments {
		r.fail("deny assignments at "+r.scope.id, fmt.Errorf("%d deny assignments, at most %d are read", len(out), directory.MaxDenyAssignments))
		out = out[:directory.MaxDenyAssignments]
	}
	r.mu.Lock()
	r.denies = append(r.denies, out...)
	r.mu.Unlock()
	// The groups a deny assignment names or excludes are expanded: whether
	// it applies to a principal depends on their members.
	seen := map[string]bool{}
	for _, d := range out {
		for _, id := range slices.Concat(d.GetPrincipalIds(), d.GetExcludePrincipalIds()) {
			if !seen[id] && r.denyGroups[id] {
				seen[id] = true
				r.spawn(func() {
					if _, err := r.group(ctx, id); err != nil {
						r.fail("group "+id+" of a deny assignment", err)
					}
				})
			}
		}
	}
}

// denyOf is a deny assignment as the audit keeps it: nil when it lacks an
// ID or scope, is on another resource than the cluster, or denies nothing
// the audit can evaluate.
// The object IDs of the groups among its principals are added to groups.
func denyOf(d *armauthorization.DenyAssignment, clusterID string, groups map[string]bool) *secureauditv1.AzureDenyAssignment {
	if d == nil || d.ID == nil || d.Properties == nil || d.Properties.Scope == nil || *d.Properties.Scope == "" {
		return nil
	}
	p := d.Properties
	if !directory.InCluster(*p.Scope, clusterID) {
		return nil
	}
	da := &secureauditv1.AzureDenyAssignment{
		Id: clip(*d.ID, 1024), Name: clip(deref(p.DenyAssignmentName), 256), Scope: clip(*p.Scope, 1024),
		DoesNotApplyToChildScopes: deref(p.DoNotApplyToChildScopes),
	}
	for _, perm := range p.Permissions {
		if perm == nil || deref(perm.Condition) != "" || len(da.Permissions) == 100 {
			continue
		}
		ap := &secureauditv1.AzureRolePermission{
			Actions: operations(perm.Actions), NotActions: operations(perm.NotActions),
			DataActions: operations(perm.DataActions), NotDataActions: operations(perm.NotDataActions),
		}
		if len(ap.Actions) > 0 || len(ap.DataActions) > 0 {
			da.Permissions = append(da.Permissions, ap)
		}
	}
	if len(da.Permissions) == 0 {
		return nil
	}
	principals := func(ps []*armauthorization.Principal) []string {
		var ids []string
		for _, pr := range ps {
			if pr != nil && pr.ID != nil && isGUID(*pr.ID) && len(ids) < 1000 {
				ids = append(ids, lower(*pr.ID))
				if strings.EqualFold(deref(pr.Type), "Group") {
					groups[lower(*pr.ID)] = true
				}
			}
		}
		slices.Sort(ids)
		return slices.Compact(ids)
	}
	da.PrincipalIds = principals(p.Principals)
	da.ExcludePrincipalIds = principals(p.ExcludePrincipals)
	if len(da.PrincipalIds) == 0 {
		return nil
	}
	return da
}
