package tenant

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// roleAssignments lists the assignments at the cluster's scope and above it
// (its resource group, subscription and management groups: atScope()) and
// keeps those of a directory.ClusterRoles role held by an object the run
// resolved.
func (r *run) roleAssignments(ctx context.Context) {
	r.mu.Lock()
	known := map[string]bool{}
	for id := range r.users {
		known[id] = true
	}
	for id := range r.groups {
		known[id] = true
	}
	for id := range r.sps {
		known[id] = true
	}
	r.mu.Unlock()
	filter := "atScope()"
	pager := r.s.assignments.NewListForScopePager(strings.TrimPrefix(r.s.cfg.ClusterID, "/"), &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
	var out []*secureauditv1.AzureRoleAssignment
	for pager.More() {
		var page armauthorization.RoleAssignmentsClientListForScopeResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			r.fail("role assignments at "+r.s.cfg.ClusterID, err)
			return
		}
		for _, a := range page.Value {
			p := a.Properties
			if a.ID == nil || p == nil || p.PrincipalID == nil || p.RoleDefinitionID == nil || p.Scope == nil || !known[lower(*p.PrincipalID)] {
				continue
			}
			name, err := r.roleName(ctx, *p.RoleDefinitionID)
			if err != nil {
				r.fail("role definition "+*p.RoleDefinitionID, err)
				continue
			}
			if !directory.IsClusterRole(name) {
				continue
			}
			ra := &secureauditv1.AzureRoleAssignment{Id: *a.ID, PrincipalId: lower(*p.PrincipalID), RoleName: name, Scope: *p.Scope}
			if p.PrincipalType != nil {
				ra.PrincipalType = string(*p.PrincipalType)
			}
			out = append(out, ra)
		}
	}
	r.mu.Lock()
	r.assigned = append(r.assigned, out...)
	r.mu.Unlock()
}

// roleName returns a role definition's name, cached for the Source's life.
func (r *run) roleName(ctx context.Context, id string) (string, error) {
	if v, ok := r.s.roleNames.Load(lower(id)); ok {
		return v.(string), nil
	}
	var resp armauthorization.RoleDefinitionsClientGetByIDResponse
	err := r.call(ctx, func() (err error) {
		resp, err = r.s.definitions.GetByID(ctx, strings.TrimPrefix(id, "/"), nil)
		return err
	})
	if err != nil {
		return "", err
	}
	if resp.Properties == nil || resp.Properties.RoleName == nil {
		return "", fmt.Errorf("role definition %s has no name", id)
	}
	r.s.roleNames.Store(lower(id), *resp.Properties.RoleName)
	return *resp.Properties.RoleName, nil
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
