package tenant

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// Counts are the objects an export wrote.
type Counts struct {
	Users, Groups, ServicePrincipals, RoleAssignments int
}

// Export resolves ps through src and writes what it found to path as a
// directory snapshot file (the protojson of secureaudit.v1.DirectorySnapshot
// that `entra-agent -directory` reads). Failed lookups are written to warn;
// unless allowPartial, they stop the export, because a snapshot missing a
// group would later read as a deleted group. An empty tenantID is taken
// from the access token's tid claim.
func Export(ctx context.Context, src *Source, ps []*secureauditv1.Principal, tenantID, path string, allowPartial bool, warn io.Writer) (Counts, error) {
	res, err := src.Resolve(ctx, ps)
	if err != nil {
		return Counts{}, fmt.Errorf("resolve: %w", err)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(warn, "lookup failed: %s: %s\n", e.GetLookup(), e.GetMessage())
	}
	if len(res.Errors) > 0 && !allowPartial {
		return Counts{}, fmt.Errorf("%d lookups failed; not writing a partial snapshot (-allow-partial writes it anyway)", len(res.Errors))
	}
	if len(res.ExcessPermissions) > 0 {
		fmt.Fprintf(warn, "violation: the credential holds Graph application permissions beyond the read-only set: %s\n", strings.Join(res.ExcessPermissions, ", "))
	}
	for _, p := range res.Unresolved {
		fmt.Fprintf(warn, "not in the directory: %s %s\n", strings.TrimPrefix(p.GetKind().String(), "PRINCIPAL_KIND_"), p.GetName())
	}
	if tenantID == "" {
		if tenantID, err = src.TenantID(ctx); err != nil {
			return Counts{}, err
		}
	}
	snap := &secureauditv1.DirectorySnapshot{
		TenantId:          tenantID,
		Users:             res.Users,
		Groups:            res.Groups,
		ServicePrincipals: res.ServicePrincipals,
		RoleAssignments:   res.RoleAssignments,
		AksCluster:        res.Cluster,
		DenyAssignments:   res.DenyAssignments,
	}
	if _, err := directory.New(snap); err != nil {
		return Counts{}, fmt.Errorf("exported snapshot is invalid: %w", err)
	}
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(snap)
	if err != nil {
		return Counts{}, fmt.Errorf("encode snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".directory-*.json")
	if err != nil {
		return Counts{}, fmt.Errorf("write snapshot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return Counts{}, fmt.Errorf("write snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Counts{}, fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Counts{}, fmt.Errorf("write snapshot: %w", err)
	}
	return Counts{len(res.Users), len(res.Groups), len(res.ServicePrincipals), len(res.RoleAssignments)}, nil
}

// TenantID returns the tenant of the source's credential (the tid claim of
// its Graph access token).
func (s *Source) TenantID(ctx context.Context) (string, error) {
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.graphScope}})
	if err != nil {
		return "", fmt.Errorf("get graph token: %w", err)
	}
	c, err := tokenClaims(tok.Token)
	if err != nil {
		return "", err
	}
	if c.TID == "" {
		return "", fmt.Errorf("access token has no tid claim")
	}
	return c.TID, nil
}
