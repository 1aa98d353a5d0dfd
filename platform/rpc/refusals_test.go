package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/rpctest"
)

// TestRefusalsAggregatedPerSource: a denial of a valid identity stays in the
// refusals a server presents however many unauthenticated calls follow it
// from however many addresses; those are aggregated per address (bounded,
// the rest in one entry) and every count is exact.
func TestRefusalsAggregatedPerSource(t *testing.T) {
	p := rpctest.NewPKI(t)
	addr := p.Serve(t, identity.RBACAgent, []byte(manifest), register)
	collect := func(conn *grpc.ClientConn) error {
		stream, err := secureauditv1.NewRBACServiceClient(conn).Collect(context.Background(), &secureauditv1.CollectRequest{AuditId: "0b8e3a52-6c1f-4e0a-9d7e-2f4c5b6a7d8e"})
		if err == nil {
			_, err = stream.Recv()
		}
		return err
	}
	if err := collect(p.Dial(t, addr, identity.RBACAgent, identity.CLI)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Collect as cli: %v", err)
	}
	const sources, perSource = 24, 20
	cfg := tlsconfig.TLSClientConfig(p.Credentials(t, identity.CLI), tlsconfig.AuthorizeID(identity.ID(identity.RBACAgent)))
	for i := range sources {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				return (&net.Dialer{LocalAddr: local}).DialContext(ctx, "tcp", a)
			}))
		if err != nil {
			t.Fatal(err)
		}
		for range perSource {
			if err := collect(conn); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Collect without certificate: %v", err)
			}
		}
		conn.Close()
	}

	var md metadata.MD
	if _, err := healthpb.NewHealthClient(p.Dial(t, addr, identity.RBACAgent, identity.Orchestrator)).Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	presented, _ := rpc.ScopeFromHeader(md)
	var got rpc.Refusals
	if err := json.Unmarshal([]byte(presented.Refusals), &got); err != nil {
		t.Fatalf("refusals header %q: %v", presented.Refusals, err)
	}
	if want := uint64(1 + sources*perSource); got.Count != want {
		t.Errorf("count %d, want %d", got.Count, want)
	}
	var sum uint64
	var denial *authz.Refusal
	perAddress := map[string]uint64{}
	for _, r := range got.Recent {
		sum += r.Count
		if r.Code == codes.PermissionDenied.String() {
			denial = &r
		} else {
			perAddress[r.Address] += r.Count
		}
	}
	if sum != got.Count {
		t.Errorf("entries add up to %d, count %d", sum, got.Count)
	}
	if denial == nil || denial.Caller != identity.ID(identity.CLI).String() || denial.Count != 1 {
		t.Errorf("the cli's denial is not presented as one refusal: %+v", got.Recent)
	}
	if len(perAddress) > 16 {
		t.Errorf("%d entries for unauthenticated sources, want at most 16", len(perAddress))
	}
	for i := range 15 {
		if a := fmt.Sprintf("127.0.1.%d", i+1); perAddress[a] != perSource {
			t.Errorf("%s: %d refusals, want %d", a, perAddress[a], perSource)
		}
	}
	if want := uint64((sources - 15) * perSource); perAddress[authz.OtherSources] != want {
		t.Errorf("other sources: %d, want %d", perAddress[authz.OtherSources], want)
	}
}
