package authz

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGuardKeepsRecentRefusals(t *testing.T) {
	g := NewGuard(&Policy{allowed: nil}, nil, slog.New(slog.DiscardHandler))
	for i := range 10 {
		_, err := g.check(context.Background(), fmt.Sprintf("/svc.S/M%d", i))
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("call %d: %v, want Unauthenticated", i, err)
		}
	}
	if _, err := g.check(context.Background(), HealthPrefix+"Check"); err != nil {
		t.Fatalf("health: %v", err)
	}
	n, recent := g.Refusals()
	if n != 10 {
		t.Errorf("refused = %d, want 10 (health is not a refusal)", n)
	}
	if len(recent) != maxRefusals {
		t.Fatalf("kept %d refusals, want %d", len(recent), maxRefusals)
	}
	for i, r := range recent {
		if want := fmt.Sprintf("/svc.S/M%d", i+2); r.Method != want || r.Code != "Unauthenticated" || r.Caller != "" || r.Reason == "" {
			t.Errorf("recent[%d] = %+v, want method %s, Unauthenticated with a reason", i, r, want)
		}
	}
}
