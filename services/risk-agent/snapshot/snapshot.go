// Package snapshot is the risk-agent's immutable, indexed view of one RBAC
// snapshot and the directory objects that came with it. It is built once from
// the received chunks; every accessor returns objects in a deterministic
// order, whatever order the chunks arrived in, so that detection over it is
// reproducible byte for byte.
package snapshot

import (
	"bytes"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Snapshot is an immutable, indexed RBAC snapshot. Callers must not modify
// the messages it returns.
type Snapshot struct {
	header          *secureauditv1.SnapshotHeader
	namespaces      []*secureauditv1.Namespace
	roles           map[string]*secureauditv1.Role // key: namespace/name
	clusterRoles    map[string]*secureauditv1.ClusterRole
	effective       map[string][]*secureauditv1.PolicyRule // cluster role name -> rules once aggregated
	roleBindings    []*secureauditv1.RoleBinding
	clusterBindings []*secureauditv1.ClusterRoleBinding
	serviceAccounts map[string]*secureauditv1.ServiceAccount // key: namespace/name
	workloads       []*secureauditv1.Workload
	usersByID       map[string]*secureauditv1.DirectoryUser
	usersByUPN      map[string]*secureauditv1.DirectoryUser // key: lower-case UPN
	groupsByID      map[string]*secureauditv1.DirectoryGroup
	spsByID         map[string]*secureauditv1.DirectoryServicePrincipal
	directory       bool
	unaudited       []*secureauditv1.UnauditedObject
	unauditedCount  uint32
}

// Build indexes the objects of the given chunks. Headers and trailers are
// not checked here (see Assembler). Objects that appear more than once under
// the same key are resolved deterministically: the copy whose deterministic
// wire encoding sorts first wins.
func Build(chunks []*secureauditv1.SnapshotChunk, dir []*secureauditv1.DirectoryChunk) *Snapshot {
	s := &Snapshot{
		roles:           map[string]*secureauditv1.Role{},
		clusterRoles:    map[string]*secureauditv1.ClusterRole{},
		serviceAccounts: map[string]*secureauditv1.ServiceAccount{},
		usersByID:       map[string]*secureauditv1.DirectoryUser{},
		usersByUPN:      map[string]*secureauditv1.DirectoryUser{},
		groupsByID:      map[string]*secureauditv1.DirectoryGroup{},
		spsByID:         map[string]*secureauditv1.DirectoryServicePrincipal{},
		directory:       len(dir) > 0,
	}
	namespaces := map[string]*secureauditv1.Namespace{}
	roleBindings := map[string]*secureauditv1.RoleBinding{}
	clusterBindings := map[string]*secureauditv1.ClusterRoleBinding{}
	workloads := map[string]*secureauditv1.Workload{}
	for _, c := range chunks {
		if c.GetHeader() != nil && s.header == nil {
			s.header = c.GetHeader()
		}
		if t := c.GetTrailer(); t != nil {
			s.unaudited = t.GetUnaudited()
			s.unauditedCount = max(t.GetUnauditedCount(), uint32(len(t.GetUnaudited())))
		}
		for _, o := range c.GetNamespaces() {
			put(namespaces, o.GetMeta().GetName(), o)
		}
		for _, o := range c.GetRoles() {
			put(s.roles, Key(o.GetMeta().GetNamespace(), o.GetMeta().GetName()), o)
		}
		for _, o := range c.GetClusterRoles() {
			put(s.clusterRoles, o.GetMeta().GetName(), o)
		}
		for _, o := range c.GetRoleBindings() {
			put(roleBindings, Key(o.GetMeta().GetNamespace(), o.GetMeta().GetName()), o)
		}
		for _, o := range c.GetClusterRoleBindings() {
			put(clusterBindings, o.GetMeta().GetName(), o)
		}
		for _, o := range c.GetServiceAccounts() {
			put(s.serviceAccounts, Key(o.GetMeta().GetNamespace(), o.GetMeta().GetName()), o)
		}
		for _, o := range c.GetWorkloads() {
			put(workloads, o.GetKind()+"/"+Key(o.GetMeta().GetNamespace(), o.GetMeta().GetName()), o)
		}
	}
	for _, d := range dir {
		for _, u := range d.GetUsers() {
			put(s.usersByID, strings.ToLower(u.GetId()), u)
		}
		for _, g := range d.GetGroups() {
			put(s.groupsByID, strings.ToLower(g.GetId()), g)
		}
		for _, sp := range d.GetServicePrincipals() {
			put(s.spsByID, strings.ToLower(sp.GetId()), sp)
		}
	}
	// Index UPNs from the deduplicated users, in id order, so that a UPN
	// shared by two ids resolves the same way every time.
	for _, id := range sortedKeys(s.usersByID) {
		u := s.usersByID[id]
		upn := strings.ToLower(u.GetUserPrincipalName())
		if _, ok := s.usersByUPN[upn]; !ok {
			s.usersByUPN[upn] = u
		}
	}
	s.namespaces = sortedValues(namespaces)
	s.roleBindings = sortedValues(roleBindings)
	s.clusterBindings = sortedValues(clusterBindings)
	s.workloads = sortedValues(workloads)
	s.effective = aggregate(s.clusterRoles)
	return s
}

// put stores v under k, keeping the copy whose deterministic encoding sorts
// first when k is already taken.
func put[V proto.Message](m map[string]V, k string, v V) {
	old, ok := m[k]
	if !ok || bytes.Compare(encode(v), encode(old)) < 0 {
		m[k] = v
	}
}

func encode(m proto.Message) []byte {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// Key is the index key of a namespaced object.
func Key(namespace, name string) string { return namespace + "/" + name }

// Header returns the snapshot header, or nil when no chunk carried one.
func (s *Snapshot) Header() *secureauditv1.SnapshotHeader { return s.header }

// Namespaces returns the namespaces sorted by name.
func (s *Snapshot) Namespaces() []*secureauditv1.Namespace { return s.namespaces }

// Role returns the Role namespace/name.
func (s *Snapshot) Role(namespace, name string) (*secureauditv1.Role, bool) {
	r, ok := s.roles[Key(namespace, name)]
	return r, ok
}

// Roles returns every Role sorted by namespace and name.
func (s *Snapshot) Roles() []*secureauditv1.Role { return sortedValues(s.roles) }

// ClusterRole returns the ClusterRole name as it arrived (without aggregation).
func (s *Snapshot) ClusterRole(name string) (*secureauditv1.ClusterRole, bool) {
	r, ok := s.clusterRoles[name]
	return r, ok
}

// ClusterRoles returns every ClusterRole sorted by name.
func (s *Snapshot) ClusterRoles() []*secureauditv1.ClusterRole { return sortedValues(s.clusterRoles) }

// EffectiveClusterRoleRules returns the rules a ClusterRole holds once the
// clusterrole-aggregation controller has run (see aggregate): its own rules,
// or, for a role whose selectors match roles with rules, theirs instead.
// It also says whether the role exists.
func (s *Snapshot) EffectiveClusterRoleRules(name string) ([]*secureauditv1.PolicyRule, bool) {
	rules, ok := s.effective[name]
	return rules, ok
}

// RoleBindings returns every RoleBinding sorted by namespace and name.
func (s *Snapshot) RoleBindings() []*secureauditv1.RoleBinding { return s.roleBindings }

// ClusterRoleBindings returns every ClusterRoleBinding sorted by name.
func (s *Snapshot) ClusterRoleBindings() []*secureauditv1.ClusterRoleBinding {
	return s.clusterBindings
}

// ServiceAccount returns the ServiceAccount namespace/name.
func (s *Snapshot) ServiceAccount(namespace, name string) (*secureauditv1.ServiceAccount, bool) {
	sa, ok := s.serviceAccounts[Key(namespace, name)]
	return sa, ok
}

// ServiceAccounts returns every ServiceAccount sorted by namespace and name.
func (s *Snapshot) ServiceAccounts() []*secureauditv1.ServiceAccount {
	return sortedValues(s.serviceAccounts)
}

// Workloads returns every workload sorted by kind, namespace and name.
func (s *Snapshot) Workloads() []*secureauditv1.Workload { return s.workloads }

// Unaudited returns the objects the rbac-agent left out of the snapshot
// because they are too large to audit, as its trailer names them, and how
// many it left out in all (it names the first 1,000).
func (s *Snapshot) Unaudited() ([]*secureauditv1.UnauditedObject, uint32) {
	return s.unaudited, s.unauditedCount
}

// HasDirectory reports whether any directory chunk was part of the input.
func (s *Snapshot) HasDirectory() bool { return s.directory }

// UserByID returns the directory user with the given object id (case-insensitive).
func (s *Snapshot) UserByID(id string) (*secureauditv1.DirectoryUser, bool) {
	u, ok := s.usersByID[strings.ToLower(id)]
	return u, ok
}

// UserByUPN returns the directory user with the given user principal name,
// compared case-insensitively.
func (s *Snapshot) UserByUPN(upn string) (*secureauditv1.DirectoryUser, bool) {
	u, ok := s.usersByUPN[strings.ToLower(upn)]
	return u, ok
}

// ServicePrincipalByID returns the directory service principal with the
// given object id (case-insensitive).
func (s *Snapshot) ServicePrincipalByID(id string) (*secureauditv1.DirectoryServicePrincipal, bool) {
	sp, ok := s.spsByID[strings.ToLower(id)]
	return sp, ok
}

// SubjectRef names a binding subject for a finding, with the directory's
// display name of a user (by UPN or object ID), a group or a service
// principal; a User whose name is a service principal's object ID (as AKS
// binds applications and managed identities) is marked as one, so that no
// report shows it as a person.
func (s *Snapshot) SubjectRef(sub *secureauditv1.Subject) *secureauditv1.SubjectRef {
	ref := &secureauditv1.SubjectRef{Kind: sub.GetKind(), Name: sub.GetName(), Namespace: sub.GetNamespace()}
	switch sub.GetKind() {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		if u, ok := s.UserByUPN(sub.GetName()); ok {
			ref.DisplayName = u.GetDisplayName()
		} else if u, ok := s.UserByID(sub.GetName()); ok {
			ref.DisplayName = u.GetDisplayName()
		} else if sp, ok := s.ServicePrincipalByID(sub.GetName()); ok {
			ref.DisplayName = sp.GetDisplayName()
			ref.ServicePrincipal = true
		}
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		if g, ok := s.GroupByID(sub.GetName()); ok {
			ref.DisplayName = g.GetDisplayName()
		}
	}
	return ref
}

// GroupByID returns the directory group with the given object id (case-insensitive).
func (s *Snapshot) GroupByID(id string) (*secureauditv1.DirectoryGroup, bool) {
	g, ok := s.groupsByID[strings.ToLower(id)]
	return g, ok
}
