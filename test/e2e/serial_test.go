package e2e

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// TestAuditsOfOneClusterNeverOverlap starts two audits at once: the second
// waits in the queue until the first has finished.
func TestAuditsOfOneClusterNeverOverlap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(env.stack.Orchestrator(), env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	api := c.API()
	var ids []string
	for range 2 {
		resp, err := api.StartAudit(ctx, &secureauditv1.StartAuditRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, resp.GetAudit().GetId())
	}
	type span struct{ start, end time.Time }
	spans := map[string]span{}
	for _, id := range ids {
		stream, err := api.WatchAudit(ctx, &secureauditv1.WatchAuditRequest{AuditId: id})
		if err != nil {
			t.Fatal(err)
		}
		var s span
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			e := resp.GetEvent()
			if e.GetState() == secureauditv1.AuditState_AUDIT_STATE_RUNNING && s.start.IsZero() {
				s.start = e.GetTime().AsTime()
			}
			s.end = e.GetTime().AsTime()
		}
		got, err := api.GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetAudit().GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
			t.Fatalf("audit %s ended %s: %s", id, got.GetAudit().GetState(), got.GetAudit().GetError())
		}
		if s.start.IsZero() {
			t.Fatalf("audit %s never ran", id)
		}
		spans[id] = s
	}
	first, second := spans[ids[0]], spans[ids[1]]
	if second.start.Before(first.end) {
		t.Errorf("the second audit started running at %s, before the first ended at %s", second.start, first.end)
	}
}
