package tenant

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	platformrun "secureaudit.dev/platform/run"
	"secureaudit.dev/services/entra-agent/directory"
)

// armScope is the token scope of Azure Resource Manager.
const armScope = "https://management.core.windows.net//.default"

// Declared are the permissions the agent's scope manifest declares: the
// Graph application permissions and the ARM operations of its credential.
type Declared struct {
	Graph []string
	ARM   []string
}

// DeclaredFrom reads the manifest's spec.permissions entries
// ({graph: [...]} and {arm: [...]}).
func DeclaredFrom(perms []map[string]any) Declared {
	var d Declared
	list := func(v any) []string {
		var out []string
		if l, ok := v.([]any); ok {
			for _, x := range l {
				if s, ok := x.(string); ok && s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	for _, p := range perms {
		d.Graph = append(d.Graph, list(p["graph"])...)
		d.ARM = append(d.ARM, list(p["arm"])...)
	}
	return d
}

// CheckCredential proves the agent's own credential no broader than its
// manifest declares (SOC 2 CC6.2): the Graph application permissions in its
// Graph token must all be declared, and every Azure role assigned to it at,
// above or below the cluster (listed for its object ID, the oid claim of its
// ARM token) must allow nothing but declared operations and reads: an
// action that writes, deletes or acts (listClusterAdminCredential/action
// among them), or any data action, is a violation. Reads of other resource
// types are tolerated: Reader, the read-only built-in role, grants */read.
// Without a cluster the ARM half is not checked and the summary says so.
func (s *Source) CheckCredential(ctx context.Context, d Declared) platformrun.CredentialCheck {
	var findings []string
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.graphScope}})
	if err != nil {
		return platformrun.CredentialCheck{Outcome: "error", Summary: "the credential self-check could not get a Graph token: " + err.Error()}
	}
	roles, err := tokenRoles(tok.Token)
	if err != nil {
		return platformrun.CredentialCheck{Outcome: "error", Summary: "the credential self-check could not read the Graph token: " + err.Error()}
	}
	for _, r := range roles {
		if !slices.ContainsFunc(d.Graph, func(g string) bool { return strings.EqualFold(g, r) }) {
			findings = append(findings, "Graph application permission "+r+" is not declared")
		}
	}
	checked := "its Graph application permissions"
	if s.scope != nil {
		arm, err := s.armViolations(ctx, d.ARM)
		if err != nil {
			return platformrun.CredentialCheck{Outcome: "error", Summary: "the credential self-check could not read its Azure role assignments: " + err.Error()}
		}
		findings = append(findings, arm...)
		checked += " and its Azure role assignments at, above and below " + s.cfg.ClusterID
	} else {
		checked += " (no cluster configured: Azure role assignments not checked)"
	}
	slices.Sort(findings)
	findings = slices.Compact(findings)
	if len(findings) > 0 {
		return platformrun.CredentialCheck{Outcome: "violation", Summary: "VIOLATION: the entra-agent's credential is broader than its scope manifest declares: " + strings.Join(findings[:min(len(findings), 20)], "; "), Findings: findings[:min(len(findings), 20)]}
	}
	return platformrun.CredentialCheck{Outcome: "pass", Summary: "the entra-agent's credential is no broader than its scope manifest: checked " + checked}
}

// armViolations lists the actions of the agent's own role assignments that
// the declared operations do not cover.
func (s *Source) armViolations(ctx context.Context, declared []string) ([]string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
	if err != nil {
		return nil, fmt.Errorf("get ARM token: %w", err)
	}
	c, err := tokenClaims(tok.Token)
	if err != nil {
		return nil, err
	}
	if !isGUID(c.OID) {
		return nil, fmt.Errorf("the ARM token has no oid claim")
	}
	r := newRun(s)
	filter := "assignedTo('" + lower(c.OID) + "')"
	pager := s.scope.assignments.NewListForScopePager(strings.TrimPrefix(s.scope.id, "/"), &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &filter})
	var out []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Value {
			if a.Properties == nil || a.Properties.RoleDefinitionID == nil {
				continue
			}
			def, err := r.roleDefinition(ctx, *a.Properties.RoleDefinitionID)
			if err != nil {
				return nil, err
			}
			for _, p := range def.perms {
				for _, op := range p.GetActions() {
					if !covered(op, declared) {
						out = append(out, fmt.Sprintf("Azure role %q at %s allows %s", def.name, deref(a.Properties.Scope), op))
					}
				}
				for _, op := range p.GetDataActions() {
					out = append(out, fmt.Sprintf("Azure role %q at %s allows the data action %s", def.name, deref(a.Properties.Scope), op))
				}
			}
		}
	}
	return out, nil
}

// covered reports whether a role's action is a declared operation (or
// falls within one) or only reads.
func covered(op string, declared []string) bool {
	if strings.HasSuffix(strings.ToLower(op), "/read") {
		return true
	}
	return slices.ContainsFunc(declared, func(d string) bool { return directory.Match(d, op) })
}
