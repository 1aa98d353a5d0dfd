package directory

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"buf.build/go/protovalidate"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// FuzzLoad feeds arbitrary bytes to the directory snapshot loader, seeded
// with the bundled example and the cases of TestLoadErrors. It must never
// panic or hang, and a snapshot it accepts answers for every object it holds:
// each user by object ID and by UPN, each group, each service principal by
// object ID and by app ID is resolved, and the answer splits into chunks that
// pass DirectoryChunk's protovalidate rules.
// `go test` runs the seeds; `go test -fuzz FuzzLoad` explores.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	const (
		tenant = `"tenantId": "38da03cf-8908-4b39-8df4-f889b1020287"`
		user   = `{"id": "e67005c7-ae30-491e-afb9-f787b213b19c", "userPrincipalName": "priya@example.com"}`
	)
	for _, s := range []string{
		``, `{`, `[]`, `{"tenantId": "contoso"}`,
		`{` + tenant + `, "users": [` + user + `], "groups": [{"id": "c145efc9-e82b-46fe-b60b-a02a33b3a2c0", "memberIds": ["e67005c7-ae30-491e-afb9-f787b213b19c", "c145efc9-e82b-46fe-b60b-a02a33b3a2c0"], "ownerIds": ["e67005c7-ae30-491e-afb9-f787b213b19c"]}]}`,
		`{` + tenant + `, "users": [` + user + `], "groups": [{"id": "E67005C7-AE30-491E-AFB9-F787B213B19C"}]}`,
		`{` + tenant + `, "users": [` + user + `, {"id": "f3c1fccf-d3d4-471a-be0e-d3f336dd87df", "userPrincipalName": "PRIYA@example.com"}]}`,
	} {
		f.Add([]byte(s))
	}
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "directory.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(path)
		if err != nil {
			return
		}
		var principals []*secureauditv1.Principal
		add := func(kind secureauditv1.PrincipalKind, name string) {
			principals = append(principals, &secureauditv1.Principal{Kind: kind, Name: name})
		}
		for _, u := range s.users {
			add(secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, u.GetId())
			add(secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, u.GetUserPrincipalName())
		}
		for _, g := range s.groups {
			add(secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP, g.GetId())
		}
		for _, sp := range s.sps {
			add(secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, sp.GetId())
			if sp.GetAppId() != "" {
				add(secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID, sp.GetAppId())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := s.Resolve(ctx, principals)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		for _, p := range r.Unresolved {
			t.Errorf("the snapshot holds %s %q but did not resolve it", p.GetKind(), p.GetName())
		}
		if got, want := len(r.Users), len(s.users); got < want {
			t.Errorf("resolved %d users of the %d asked for", got, want)
		}
		if got, want := len(r.Groups), len(s.groups); got < want {
			t.Errorf("resolved %d groups of the %d asked for", got, want)
		}
		for i, c := range Chunks(r) {
			if err := v.Validate(c); err != nil {
				t.Errorf("chunk %d is invalid: %v", i, err)
			}
		}
	})
}
