package directory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// examplePath is the bundled example directory snapshot.
const examplePath = "../../../examples/directory.json"

// Object IDs of the bundled example (examples/README.md).
const (
	exampleTenant        = "38da03cf-8908-4b39-8df4-f889b1020287"
	examplePaymentsAdmin = "c145efc9-e82b-46fe-b60b-a02a33b3a2c0"
	examplePlatformOps   = "e97a7122-b22b-4cca-9229-80bd3b8f5453"
	exampleSREOnCall     = "5d8a06c1-fd90-4ac2-83c5-6182957a6376"
	exampleOrphanGroup   = "bc5fa9b9-9b3e-495d-8eaa-d8f12ea67237"
	exampleGuestUPN      = "alice_contoso.com#EXT#@fabrikamcorp.onmicrosoft.com"
	exampleDisabledUPN   = "marco.rossi@fabrikamcorp.onmicrosoft.com"
)

// TestLoadExample parses examples/directory.json with protojson (unknown
// fields rejected) and protovalidate, and checks the cases it is meant to plant.
func TestLoadExample(t *testing.T) {
	s, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if got := s.TenantID(); got != exampleTenant {
		t.Errorf("TenantID() = %q, want %q", got, exampleTenant)
	}
	if _, ok := s.groups[exampleOrphanGroup]; ok {
		t.Errorf("group %s is in the example directory; it must be missing (orphaned binding)", exampleOrphanGroup)
	}
	guest, ok := s.upns[strings.ToLower(exampleGuestUPN)]
	if !ok || guest.GetUserType() != secureauditv1.UserType_USER_TYPE_GUEST {
		t.Errorf("guest %s: found %v, type %v; want a guest user", exampleGuestUPN, ok, guest.GetUserType())
	}
	disabled, ok := s.upns[exampleDisabledUPN]
	if !ok || disabled.GetAccountEnabled() {
		t.Errorf("%s: found %v, enabled %v; want a disabled user", exampleDisabledUPN, ok, disabled.GetAccountEnabled())
	}
	admins := s.groups[examplePaymentsAdmin]
	for _, id := range []string{guest.GetId(), disabled.GetId()} {
		if !containsID(admins.GetMemberIds(), id) {
			t.Errorf("group %s does not list member %s", examplePaymentsAdmin, id)
		}
	}
	if !containsID(s.groups[examplePlatformOps].GetMemberIds(), exampleSREOnCall) {
		t.Errorf("group %s does not nest group %s", examplePlatformOps, exampleSREOnCall)
	}
}

func containsID(ids []string, id string) bool {
	for _, v := range ids {
		if strings.EqualFold(v, id) {
			return true
		}
	}
	return false
}

func TestLoadErrors(t *testing.T) {
	const (
		tenant = `"tenantId": "38da03cf-8908-4b39-8df4-f889b1020287"`
		user   = `{"id": "e67005c7-ae30-491e-afb9-f787b213b19c", "userPrincipalName": "priya@example.com"}`
	)
	tests := []struct {
		name    string
		content string // no file is written when empty and missing is set
		missing bool
		want    []string // substrings of the error, besides the file path
	}{
		{name: "missing file", missing: true, want: []string{"read directory snapshot", "no such file"}},
		{name: "empty file", content: "", want: []string{"parse directory snapshot"}},
		{name: "malformed JSON", content: `{` + tenant + `, "users": [`, want: []string{"parse directory snapshot"}},
		{name: "not an object", content: `[]`, want: []string{"parse directory snapshot"}},
		{name: "unknown field", content: `{` + tenant + `, "people": []}`, want: []string{"parse directory snapshot", "people"}},
		{name: "unknown enum value", content: `{` + tenant + `, "users": [{"id": "e67005c7-ae30-491e-afb9-f787b213b19c", "userPrincipalName": "a@example.com", "userType": "USER_TYPE_ROBOT"}]}`, want: []string{"USER_TYPE_ROBOT"}},
		{name: "invalid tenant uuid", content: `{"tenantId": "contoso"}`, want: []string{"tenant_id", "UUID"}},
		{name: "invalid user uuid", content: `{` + tenant + `, "users": [` + user + `, {"id": "not-a-uuid", "userPrincipalName": "x@example.com"}]}`, want: []string{"users[1].id", "UUID"}},
		{name: "invalid member uuid", content: `{` + tenant + `, "groups": [{"id": "c145efc9-e82b-46fe-b60b-a02a33b3a2c0", "memberIds": ["priya"]}]}`, want: []string{"groups[0].member_ids[0]"}},
		{name: "empty UPN", content: `{` + tenant + `, "users": [{"id": "e67005c7-ae30-491e-afb9-f787b213b19c"}]}`, want: []string{"users[0].user_principal_name"}},
		{name: "duplicate id across kinds", content: `{` + tenant + `, "users": [` + user + `], "groups": [{"id": "E67005C7-AE30-491E-AFB9-F787B213B19C"}]}`, want: []string{"groups[0].id", "duplicate object id", "users[0].id"}},
		{name: "duplicate UPN", content: `{` + tenant + `, "users": [` + user + `, {"id": "f3c1fccf-d3d4-471a-be0e-d3f336dd87df", "userPrincipalName": "PRIYA@example.com"}]}`, want: []string{"users[1].user_principal_name", "duplicate user principal name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "directory.json")
			if !tt.missing {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Load(path)
			if err == nil {
				t.Fatalf("Load() = %v, want an error", s)
			}
			for _, w := range append([]string{path}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// oid returns a valid object ID for a test object number.
func oid(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

func user(n int, upn string, typ secureauditv1.UserType, enabled bool) *secureauditv1.DirectoryUser {
	return &secureauditv1.DirectoryUser{Id: oid(n), UserPrincipalName: upn, DisplayName: upn, UserType: typ, AccountEnabled: enabled}
}

func group(n int, name string, members, owners []string) *secureauditv1.DirectoryGroup {
	return &secureauditv1.DirectoryGroup{Id: oid(n), DisplayName: name, MemberIds: members, OwnerIds: owners}
}

func TestResolve(t *testing.T) {
	const member, guest = secureauditv1.UserType_USER_TYPE_MEMBER, secureauditv1.UserType_USER_TYPE_GUEST
	var (
		alice = user(1, "Alice.Smith@example.com", member, true)
		bob   = user(2, "bob@example.com", member, false)
		gina  = user(3, "gina_contoso.com#EXT#@example.onmicrosoft.com", guest, true)
		owen  = user(4, "owen@example.com", member, true)
		dave  = user(5, "dave@example.com", member, true)
		sp    = &secureauditv1.DirectoryServicePrincipal{
			Id: oid(30), AppId: oid(31), DisplayName: "ci-deployer", ServicePrincipalType: "ManagedIdentity",
			ResourceId:           "/subscriptions/" + oid(40) + "/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ci-deployer",
			FederatedCredentials: []*secureauditv1.FederatedCredential{{Name: "ci", Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:example/app:ref:refs/heads/main"}},
		}
		// top nests mid, mid nests leaf, leaf nests mid again: a cycle.
		// leaf also names an object the directory does not hold (oid(99)).
		top     = group(10, "top", []string{alice.Id, oid(11)}, []string{owen.Id})
		mid     = group(11, "mid", []string{bob.Id, oid(12)}, nil)
		leaf    = group(12, "leaf", []string{oid(11), dave.Id, sp.Id, oid(99)}, nil)
		guests  = group(13, "guests", []string{gina.Id}, []string{gina.Id})
		ownedBy = group(14, "owned-by-group", nil, []string{oid(13)})
	)
	s, err := New(&secureauditv1.DirectorySnapshot{
		TenantId:          oid(100),
		Users:             []*secureauditv1.DirectoryUser{alice, bob, gina, owen, dave},
		Groups:            []*secureauditv1.DirectoryGroup{top, mid, leaf, guests, ownedBy},
		ServicePrincipals: []*secureauditv1.DirectoryServicePrincipal{sp},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	u := func(name string) *secureauditv1.Principal {
		return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: name}
	}
	g := func(name string) *secureauditv1.Principal {
		return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: name}
	}
	c := func(name string) *secureauditv1.Principal {
		return &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: name}
	}
	type users = []*secureauditv1.DirectoryUser
	type groups = []*secureauditv1.DirectoryGroup
	type sps = []*secureauditv1.DirectoryServicePrincipal
	type principals = []*secureauditv1.Principal
	tests := []struct {
		name string
		in   principals
		want *Result
	}{
		{name: "user by object id", in: principals{u(bob.Id)}, want: &Result{Users: users{bob}}},
		{name: "user by upper-case object id", in: principals{u(strings.ToUpper(bob.Id))}, want: &Result{Users: users{bob}}},
		{name: "user by UPN", in: principals{u("Alice.Smith@example.com")}, want: &Result{Users: users{alice}}},
		{name: "user by UPN in another case", in: principals{u("alice.smith@EXAMPLE.COM")}, want: &Result{Users: users{alice}}},
		{name: "guest by UPN", in: principals{u("GINA_contoso.com#EXT#@example.onmicrosoft.com")}, want: &Result{Users: users{gina}}},
		{name: "service principal by object id", in: principals{u(sp.Id)}, want: &Result{ServicePrincipals: sps{sp}}},
		{name: "managed identity by client id, with its resource id", in: principals{c(strings.ToUpper(sp.AppId))}, want: &Result{ServicePrincipals: sps{sp}}},
		{name: "group with its members and owners", in: principals{g(guests.Id)}, want: &Result{Users: users{gina}, Groups: groups{guests}}},
		{
			name: "nested groups with a cycle",
			in:   principals{g(top.Id)},
			want: &Result{Users: users{alice, bob, owen, dave}, Groups: groups{top, mid, leaf}, ServicePrincipals: sps{sp}},
		},
		{
			name: "entering the cycle from inside",
			in:   principals{g(strings.ToUpper(leaf.Id))},
			want: &Result{Users: users{bob, dave}, Groups: groups{mid, leaf}, ServicePrincipals: sps{sp}},
		},
		{
			name: "a group owner is listed, not expanded",
			in:   principals{g(ownedBy.Id)},
			want: &Result{Groups: groups{guests, ownedBy}},
		},
		{
			name: "unresolved, deduplicated and sorted",
			in: principals{
				g(oid(99)), u("nobody@example.com"), u(top.Id), g("platform-admins"),
				u("nobody@example.com"), g(alice.Id), u(bob.Id),
			},
			want: &Result{
				Users: users{bob},
				Unresolved: principals{
					u(top.Id), u("nobody@example.com"),
					g(oid(1)), g(oid(99)), g("platform-admins"),
				},
			},
		},
		{
			name: "overlapping principals yield each object once",
			in:   principals{g(top.Id), g(mid.Id), u(alice.Id), u("ALICE.smith@example.com")},
			want: &Result{Users: users{alice, bob, owen, dave}, Groups: groups{top, mid, leaf}, ServicePrincipals: sps{sp}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Resolve(context.Background(), tt.in)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			// The snapshot's tenant is presented with every answer.
			tt.want.TenantID = oid(100)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoadResourceID reads a managed identity's resource ID and federated
// credentials from a snapshot file and answers them unchanged.
func TestLoadResourceID(t *testing.T) {
	const resourceID = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci"
	path := filepath.Join(t.TempDir(), "directory.json")
	content := `{"tenantId": "` + oid(100) + `", "servicePrincipals": [{
		"id": "` + oid(30) + `", "appId": "` + oid(31) + `", "displayName": "id-ci", "servicePrincipalType": "ManagedIdentity",
		"resourceId": "` + resourceID + `",
		"federatedCredentials": [{"name": "ci", "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:example/app:environment:prod"}]}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve(context.Background(), []*secureauditv1.Principal{{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, Name: oid(31)}})
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{ServicePrincipals: []*secureauditv1.DirectoryServicePrincipal{{
		Id: oid(30), AppId: oid(31), DisplayName: "id-ci", ServicePrincipalType: "ManagedIdentity", ResourceId: resourceID,
		FederatedCredentials: []*secureauditv1.FederatedCredential{{Name: "ci", Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:example/app:environment:prod"}},
	}}, TenantID: oid(100)}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
	}
}

func TestResolveCanceled(t *testing.T) {
	s, err := New(&secureauditv1.DirectorySnapshot{TenantId: oid(100)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "a@example.com"}
	if _, err := s.Resolve(ctx, []*secureauditv1.Principal{p}); err != context.Canceled {
		t.Errorf("Resolve(canceled) error = %v, want context.Canceled", err)
	}
}
