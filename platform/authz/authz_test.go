package authz

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TestGuardAggregatesRefusals: unauthenticated calls are aggregated per
// source address and method, past the bound into one entry, with exact
// counts; health is not a refusal.
func TestGuardAggregatesRefusals(t *testing.T) {
	g := NewGuard(&Policy{allowed: nil}, nil, slog.New(slog.DiscardHandler))
	from := func(host string) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(host), Port: 40000}})
	}
	calls := 0
	for src := range maxAnonSources + 4 {
		for range 3 {
			_, err := g.check(from(fmt.Sprintf("10.0.0.%d", src+1)), "/svc.S/M")
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("call: %v, want Unauthenticated", err)
			}
			calls++
		}
	}
	if _, err := g.check(context.Background(), HealthPrefix+"Check"); err != nil {
		t.Fatalf("health: %v", err)
	}
	n, entries := g.Refusals()
	if n != uint64(calls) {
		t.Errorf("refused = %d, want %d (health is not a refusal)", n, calls)
	}
	if len(entries) != maxAnonSources {
		t.Fatalf("%d entries, want %d", len(entries), maxAnonSources)
	}
	var sum uint64
	byAddr := map[string]Refusal{}
	for _, e := range entries {
		sum += e.Count
		byAddr[e.Address] = e
	}
	for i := range maxAnonSources {
		want := uint64(3)
		addr := fmt.Sprintf("10.0.0.%d", i+1)
		if i == maxAnonSources-1 {
			want, addr = 3*5, OtherSources
		}
		if e := byAddr[addr]; e.Count != want || e.Code != "Unauthenticated" || e.Caller != "" || e.Method != map[bool]string{true: OtherSources, false: "/svc.S/M"}[addr == OtherSources] {
			t.Errorf("entry for %s = %+v, want %d calls", addr, e, want)
		}
	}
	if sum != n {
		t.Errorf("entries count %d, total %d", sum, n)
	}
}
