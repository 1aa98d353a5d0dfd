package directory

import (
	"fmt"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

func TestChunks(t *testing.T) {
	users := func(n int) []*secureauditv1.DirectoryUser {
		out := make([]*secureauditv1.DirectoryUser, n)
		for i := range out {
			out[i] = user(i, fmt.Sprintf("user%d@example.com", i), secureauditv1.UserType_USER_TYPE_MEMBER, true)
		}
		return out
	}
	groups := func(n int) []*secureauditv1.DirectoryGroup {
		out := make([]*secureauditv1.DirectoryGroup, n)
		for i := range out {
			out[i] = group(i, fmt.Sprintf("group-%d", i), nil, nil)
		}
		return out
	}
	sps := func(n int) []*secureauditv1.DirectoryServicePrincipal {
		out := make([]*secureauditv1.DirectoryServicePrincipal, n)
		for i := range out {
			out[i] = &secureauditv1.DirectoryServicePrincipal{Id: oid(i), AppId: oid(i + 5000)}
		}
		return out
	}
	unresolved := func(n int) []*secureauditv1.Principal {
		out := make([]*secureauditv1.Principal, n)
		for i := range out {
			out[i] = &secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, Name: oid(i)}
		}
		return out
	}
	type sizes struct{ users, groups, sps, unresolved int }
	tests := []struct {
		name string
		in   *Result
		want []sizes
	}{
		{name: "empty result still answers", in: &Result{}, want: []sizes{{}}},
		{name: "one of each", in: &Result{Users: users(1), Groups: groups(1), ServicePrincipals: sps(1), Unresolved: unresolved(1)}, want: []sizes{{1, 1, 1, 1}}},
		{name: "exactly at the limits", in: &Result{Users: users(500), Groups: groups(500), ServicePrincipals: sps(500), Unresolved: unresolved(1000)}, want: []sizes{{500, 500, 500, 1000}}},
		{name: "1200 users", in: &Result{Users: users(1200)}, want: []sizes{{users: 500}, {users: 500}, {users: 200}}},
		{
			name: "lists of different lengths fill in parallel",
			in:   &Result{Users: users(10), Groups: groups(501), ServicePrincipals: sps(1001), Unresolved: unresolved(2001)},
			want: []sizes{{10, 500, 500, 1000}, {0, 1, 500, 1000}, {0, 0, 1, 1}},
		},
	}
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunks := Chunks(tt.in)
			var got []sizes
			joined := &Result{}
			for i, c := range chunks {
				got = append(got, sizes{len(c.GetUsers()), len(c.GetGroups()), len(c.GetServicePrincipals()), len(c.GetUnresolved())})
				if err := v.Validate(&secureauditv1.ResolveResponse{Chunk: c}); err != nil {
					t.Errorf("chunk %d is invalid: %v", i, err)
				}
				joined.Users = append(joined.Users, c.GetUsers()...)
				joined.Groups = append(joined.Groups, c.GetGroups()...)
				joined.ServicePrincipals = append(joined.ServicePrincipals, c.GetServicePrincipals()...)
				joined.Unresolved = append(joined.Unresolved, c.GetUnresolved()...)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(sizes{})); diff != "" {
				t.Errorf("chunk sizes mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.in, joined, protocmp.Transform()); diff != "" {
				t.Errorf("chunks do not add up to the result, in order (-want +got):\n%s", diff)
			}
		})
	}
}
