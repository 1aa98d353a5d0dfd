package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Snapshot is a Source over a directory snapshot held in memory, indexed by
// object ID and user principal name. It is immutable once built.
type Snapshot struct {
	tenantID string
	users    map[string]*secureauditv1.DirectoryUser // by lower-case object ID
	upns     map[string]*secureauditv1.DirectoryUser // by lower-case UPN
	groups   map[string]*secureauditv1.DirectoryGroup
	sps      map[string]*secureauditv1.DirectoryServicePrincipal
	apps     map[string]*secureauditv1.DirectoryServicePrincipal // by lower-case app ID
	assigned map[string][]*secureauditv1.AzureRoleAssignment     // by lower-case principal ID
	cluster  *secureauditv1.AksCluster                           // nil when the snapshot has none
	reaching []*secureauditv1.AzureRoleAssignment                // with a route into the cluster, by ID
	denies   []*secureauditv1.AzureDenyAssignment                // at, above or below the cluster, by ID
}

// Load reads a directory snapshot file: the protojson of
// secureaudit.v1.DirectorySnapshot, unknown fields rejected, checked against
// its protovalidate rules and for duplicate object IDs and UPNs. Errors name
// the file and, for invalid content, the field path.
func Load(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read directory snapshot: %w", err)
	}
	var msg secureauditv1.DirectorySnapshot
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(data, &msg); err != nil {
		return nil, fmt.Errorf("parse directory snapshot %s: %w", path, err)
	}
	s, err := New(&msg)
	if err != nil {
		return nil, fmt.Errorf("directory snapshot %s: %w", path, err)
	}
	return s, nil
}

// New indexes a directory snapshot after checking it against its protovalidate
// rules and for duplicate object IDs (across users, groups and service
// principals) and duplicate UPNs. s must not be modified afterwards.
func New(s *secureauditv1.DirectorySnapshot) (*Snapshot, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("build validator: %w", err)
	}
	if err := v.Validate(s); err != nil {
		return nil, err
	}
	snap := &Snapshot{
		tenantID: s.GetTenantId(),
		users:    make(map[string]*secureauditv1.DirectoryUser, len(s.GetUsers())),
		upns:     make(map[string]*secureauditv1.DirectoryUser, len(s.GetUsers())),
		groups:   make(map[string]*secureauditv1.DirectoryGroup, len(s.GetGroups())),
		sps:      make(map[string]*secureauditv1.DirectoryServicePrincipal, len(s.GetServicePrincipals())),
		apps:     make(map[string]*secureauditv1.DirectoryServicePrincipal, len(s.GetServicePrincipals())),
		assigned: make(map[string][]*secureauditv1.AzureRoleAssignment),
		cluster:  s.GetAksCluster(),
	}
	if snap.cluster != nil {
		for _, d := range s.GetDenyAssignments() {
			if InCluster(d.GetScope(), snap.cluster.GetId()) {
				snap.denies = append(snap.denies, d)
			}
		}
		slices.SortFunc(snap.denies, func(a, b *secureauditv1.AzureDenyAssignment) int {
			return cmp.Compare(strings.ToLower(a.GetId()), strings.ToLower(b.GetId()))
		})
		if len(snap.denies) > MaxDenyAssignments {
			return nil, fmt.Errorf("deny_assignments: %d at the cluster's scopes, at most %d are supported", len(snap.denies), MaxDenyAssignments)
		}
	}
	ids := make(map[string]string) // lower-case object ID -> field path of its first use
	claim := func(id, path string) error {
		key := strings.ToLower(id)
		if first, ok := ids[key]; ok {
			return fmt.Errorf("%s: duplicate object id %q (first used by %s)", path, id, first)
		}
		ids[key] = path
		return nil
	}
	var errs []error
	upnPaths := make(map[string]string)
	for i, u := range s.GetUsers() {
		path := fmt.Sprintf("users[%d].id", i)
		if err := claim(u.GetId(), path); err != nil {
			errs = append(errs, err)
			continue
		}
		upn := strings.ToLower(u.GetUserPrincipalName())
		upnPath := fmt.Sprintf("users[%d].user_principal_name", i)
		if first, ok := upnPaths[upn]; ok {
			errs = append(errs, fmt.Errorf("%s: duplicate user principal name %q (first used by %s)", upnPath, u.GetUserPrincipalName(), first))
			continue
		}
		upnPaths[upn] = upnPath
		snap.users[strings.ToLower(u.GetId())] = u
		snap.upns[upn] = u
	}
	for i, g := range s.GetGroups() {
		if err := claim(g.GetId(), fmt.Sprintf("groups[%d].id", i)); err != nil {
			errs = append(errs, err)
			continue
		}
		snap.groups[strings.ToLower(g.GetId())] = g
	}
	for i, sp := range s.GetServicePrincipals() {
		if err := claim(sp.GetId(), fmt.Sprintf("service_principals[%d].id", i)); err != nil {
			errs = append(errs, err)
			continue
		}
		snap.sps[strings.ToLower(sp.GetId())] = sp
		if err := credentialCounts(sp, i); err != nil {
			errs = append(errs, err)
		}
		SortCredentials(sp.Credentials)
		app := strings.ToLower(sp.GetAppId())
		if app == "" {
			continue
		}
		if _, ok := snap.apps[app]; ok {
			errs = append(errs, fmt.Errorf("service_principals[%d].app_id: duplicate app id %q", i, sp.GetAppId()))
			continue
		}
		snap.apps[app] = sp
	}
	assignments := make(map[string]string)
	for i, a := range s.GetRoleAssignments() {
		id := strings.ToLower(a.GetId())
		if first, ok := assignments[id]; ok {
			errs = append(errs, fmt.Errorf("role_assignments[%d].id: duplicate role assignment %q (first used by %s)", i, a.GetId(), first))
			continue
		}
		assignments[id] = fmt.Sprintf("role_assignments[%d]", i)
		a = withRoutes(a)
		if len(a.GetRoutes()) == 0 {
			continue // no route into a cluster
		}
		key := strings.ToLower(a.GetPrincipalId())
		snap.assigned[key] = append(snap.assigned[key], a)
		if snap.cluster != nil && InCluster(a.GetScope(), snap.cluster.GetId()) {
			snap.reaching = append(snap.reaching, a)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return snap, nil
}

// withRoutes returns a with its permissions (the built-in role's when it
// carries none) and the routes they open filled in; a itself is not
// modified.
func withRoutes(a *secureauditv1.AzureRoleAssignment) *secureauditv1.AzureRoleAssignment {
	if len(a.GetRoutes()) > 0 && len(a.GetPermissions()) > 0 {
		return a
	}
	c := proto.CloneOf(a)
	c.Permissions = Permissions(a)
	c.Routes = RouteOf(c)
	return c
}

// TenantID returns the Entra tenant the snapshot was taken from.
func (s *Snapshot) TenantID() string { return s.tenantID }

// Resolve looks principals up in the snapshot. When the snapshot holds an
// AKS cluster, the answer also holds every route into it through Azure
// alone: the cluster (every role assignment at, below or above its scope
// whose role opens a route, and their principals, groups expanded) and its
// admin groups, expanded. A USER principal matches a user
// by object ID or by UPN (case-insensitively), or a service principal by
// object ID; a GROUP principal matches a group by object ID; a CLIENT_ID
// principal matches a service principal by app ID. The result also holds the
// Azure role assignments of every object it holds. For every matched
// group the result also holds, transitively through nested groups (cycles are
// followed once), every member and owner it can find: users, groups and
// service principals. Member and owner IDs the snapshot does not hold are left
// for the receiver to see in the group's memberIds and ownerIds.
func (s *Snapshot) Resolve(ctx context.Context, principals []*secureauditv1.Principal) (*Result, error) {
	c := collector{
		snap:       s,
		users:      make(map[string]*secureauditv1.DirectoryUser),
		groups:     make(map[string]*secureauditv1.DirectoryGroup),
		sps:        make(map[string]*secureauditv1.DirectoryServicePrincipal),
		expanded:   make(map[string]bool),
		unresolved: make(map[unresolvedKey]*secureauditv1.Principal),
	}
	if s.cluster != nil {
		for _, id := range s.cluster.GetAdminGroupObjectIds() {
			if g, ok := s.groups[strings.ToLower(id)]; ok {
				c.expand(g)
			}
		}
		for _, a := range s.reaching {
			if g, ok := s.groups[strings.ToLower(a.GetPrincipalId())]; ok {
				c.expand(g)
			} else {
				c.add(a.GetPrincipalId())
			}
		}
	}
	for _, p := range principals {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		key := strings.ToLower(p.GetName())
		found := false
		switch p.GetKind() {
		case secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER:
			if u, ok := s.users[key]; ok {
				c.users[key], found = u, true
			} else if u, ok := s.upns[key]; ok {
				c.users[strings.ToLower(u.GetId())], found = u, true
			} else if sp, ok := s.sps[key]; ok {
				c.sps[key], found = sp, true
			}
		case secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP:
			if g, ok := s.groups[key]; ok {
				c.expand(g)
				found = true
			}
		case secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID:
			if sp, ok := s.apps[key]; ok {
				c.sps[strings.ToLower(sp.GetId())], found = sp, true
			}
		}
		if !found {
			c.unresolved[unresolvedKey{p.GetKind(), p.GetName()}] = p
		}
	}
	return c.result(), nil
}

type unresolvedKey struct {
	kind secureauditv1.PrincipalKind
	name string
}

// collector gathers the objects of one Resolve call, keyed by lower-case ID.
type collector struct {
	snap       *Snapshot
	users      map[string]*secureauditv1.DirectoryUser
	groups     map[string]*secureauditv1.DirectoryGroup
	sps        map[string]*secureauditv1.DirectoryServicePrincipal
	expanded   map[string]bool
	unresolved map[unresolvedKey]*secureauditv1.Principal
}

// expand adds g and everything reachable from it through membership
// (standing or eligible), with an
// explicit stack so that deep nesting cannot exhaust the goroutine stack.
// Owners are added but not expanded: owning a group grants no membership.
func (c *collector) expand(g *secureauditv1.DirectoryGroup) {
	stack := []*secureauditv1.DirectoryGroup{g}
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		key := strings.ToLower(g.GetId())
		if c.expanded[key] {
			continue
		}
		c.expanded[key] = true
		c.groups[key] = g
		// Eligible members (PIM for Groups) are members once activated:
		// resolved and expanded like the others.
		for _, ids := range [][]string{g.GetMemberIds(), g.GetEligibleMemberIds()} {
			for _, id := range ids {
				if member := c.add(id); member != nil {
					stack = append(stack, member)
				}
			}
		}
		for _, id := range g.GetOwnerIds() {
			c.add(id)
		}
	}
}

// add adds the object with the given ID, if the snapshot holds it, and returns
// it when it is a group.
func (c *collector) add(id string) *secureauditv1.DirectoryGroup {
	key := strings.ToLower(id)
	if u, ok := c.snap.users[key]; ok {
		c.users[key] = u
	} else if g, ok := c.snap.groups[key]; ok {
		c.groups[key] = g
		return g
	} else if sp, ok := c.snap.sps[key]; ok {
		c.sps[key] = sp
	}
	return nil
}

func (c *collector) result() *Result {
	r := &Result{
		Users:             sortedByID(c.users, (*secureauditv1.DirectoryUser).GetId),
		Groups:            sortedByID(c.groups, (*secureauditv1.DirectoryGroup).GetId),
		ServicePrincipals: sortedByID(c.sps, (*secureauditv1.DirectoryServicePrincipal).GetId),
		TenantID:          c.snap.tenantID,
		ClusterResourceID: c.snap.cluster.GetId(),
	}
	// The role assignments with a route into the cluster: of every object in
	// the answer, and every one reaching the snapshot's cluster.
	assigned := make(map[string]*secureauditv1.AzureRoleAssignment)
	for _, ids := range [][]string{keys(c.users), keys(c.groups), keys(c.sps)} {
		for _, id := range ids {
			for _, a := range c.snap.assigned[id] {
				if c.snap.cluster == nil || InCluster(a.GetScope(), c.snap.cluster.GetId()) {
					assigned[strings.ToLower(a.GetId())] = a
				}
			}
		}
	}
	for _, a := range c.snap.reaching {
		assigned[strings.ToLower(a.GetId())] = a
	}
	r.RoleAssignments = sortedByID(assigned, (*secureauditv1.AzureRoleAssignment).GetId)
	r.Cluster = c.snap.cluster
	r.DenyAssignments = c.snap.denies
	for _, p := range c.unresolved {
		r.Unresolved = append(r.Unresolved, p)
	}
	slices.SortFunc(r.Unresolved, func(a, b *secureauditv1.Principal) int {
		return cmp.Or(cmp.Compare(a.GetKind(), b.GetKind()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return r
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedByID[T any](m map[string]T, id func(T) string) []T {
	if len(m) == 0 {
		return nil
	}
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int {
		return cmp.Or(cmp.Compare(strings.ToLower(id(a)), strings.ToLower(id(b))), cmp.Compare(id(a), id(b)))
	})
	return out
}

// credentialCounts checks that a service principal's listed credentials,
// when it lists any, are the ones its counts count.
func credentialCounts(sp *secureauditv1.DirectoryServicePrincipal, i int) error {
	if len(sp.GetCredentials()) == 0 {
		return nil
	}
	var secrets, certs uint32
	for _, c := range sp.GetCredentials() {
		if c.GetKind() == secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET {
			secrets++
		} else {
			certs++
		}
	}
	if secrets != sp.GetPasswordCredentials() || certs != sp.GetCertificateCredentials() {
		return fmt.Errorf("service_principals[%d].credentials: %d secret(s) and %d certificate(s) listed, but password_credentials is %d and certificate_credentials %d",
			i, secrets, certs, sp.GetPasswordCredentials(), sp.GetCertificateCredentials())
	}
	return nil
}
