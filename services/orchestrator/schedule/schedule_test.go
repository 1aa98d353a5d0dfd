package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// fakeStore keeps schedules and unfinished audits in memory.
type fakeStore struct {
	schedules  map[string]*secureauditv1.Schedule
	unfinished []*secureauditv1.Audit
	pruned     map[string]time.Time
	claimed    map[string]bool
}

func newFakeStore() *fakeStore {
	return &fakeStore{schedules: map[string]*secureauditv1.Schedule{}, pruned: map[string]time.Time{}, claimed: map[string]bool{}}
}

func (f *fakeStore) ClaimScheduleRun(_ context.Context, name string, due time.Time, _ string, _ time.Time) (bool, error) {
	k := name + "@" + due.String()
	if f.claimed[k] {
		return false, nil
	}
	f.claimed[k] = true
	return true, nil
}

func (f *fakeStore) TakeOverScheduleRun(context.Context, string, time.Time, string, time.Time, time.Time) (string, time.Time, bool, error) {
	return "", time.Time{}, false, nil
}

func (f *fakeStore) AuditCreatedSince(context.Context, string, time.Time) (bool, error) {
	return false, nil
}

func (f *fakeStore) SaveSchedule(_ context.Context, s *secureauditv1.Schedule) error {
	f.schedules[s.GetName()] = proto.Clone(s).(*secureauditv1.Schedule)
	return nil
}

func (f *fakeStore) ListSchedules(context.Context) ([]*secureauditv1.Schedule, error) {
	var out []*secureauditv1.Schedule
	for _, s := range f.schedules {
		out = append(out, proto.Clone(s).(*secureauditv1.Schedule))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, nil
}

func (f *fakeStore) DeleteSchedule(_ context.Context, name string) error {
	delete(f.schedules, name)
	return nil
}

func (f *fakeStore) Unfinished(context.Context) ([]*secureauditv1.Audit, error) {
	return f.unfinished, nil
}

func (f *fakeStore) PruneAudits(_ context.Context, cluster string, before time.Time) (int, error) {
	f.pruned[cluster] = before
	return 2, nil
}

func TestScheduler(t *testing.T) {
	st := newFakeStore()
	var started []string
	start := func(_ context.Context, cluster string, _ bool) (*secureauditv1.Audit, error) {
		started = append(started, cluster)
		return &secureauditv1.Audit{Id: "00000000-0000-4000-8000-00000000000" + string(rune('0'+len(started))), Cluster: cluster}, nil
	}
	s := New(st, start, slog.New(slog.DiscardHandler))
	clock := time.Date(2026, 11, 27, 1, 59, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	ctx := context.Background()

	if _, err := s.Create(ctx, &secureauditv1.Schedule{Name: "bad", Cluster: "prod", Cron: "every day"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Create with a bad cron: %v, want ErrInvalid", err)
	}
	nightly, err := s.Create(ctx, &secureauditv1.Schedule{Name: "nightly", Cluster: "prod", Cron: "0 2 * * *", RetentionDays: 30})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC); !nightly.GetNextRun().AsTime().Equal(want) {
		t.Errorf("next run %v, want %v", nightly.GetNextRun().AsTime(), want)
	}
	if _, err := s.Create(ctx, &secureauditv1.Schedule{Name: "nightly", Cluster: "prod", Cron: "@daily"}); !errors.Is(err, ErrExists) {
		t.Errorf("Create of an existing name: %v, want ErrExists", err)
	}
	if _, err := s.Create(ctx, &secureauditv1.Schedule{Name: "dev", Cluster: "dev", Cron: "@every 1m"}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name       string
		at         time.Time
		unfinished []*secureauditv1.Audit
		started    []string
		message    map[string]string
	}{
		{"nothing due", time.Date(2026, 11, 27, 1, 59, 30, 0, time.UTC), nil, nil, nil},
		{"both due", time.Date(2026, 11, 27, 2, 0, 5, 0, time.UTC), nil, []string{"dev", "prod"},
			map[string]string{"nightly": "started audit 00000000-0000-4000-8000-000000000002; deleted 2 audits older than 30 days"}},
		{"dev still running", time.Date(2026, 11, 27, 2, 1, 10, 0, time.UTC), []*secureauditv1.Audit{{Cluster: "dev"}}, nil,
			map[string]string{"dev": "skipped: an audit of dev was still pending or running"}},
		{"dev again", time.Date(2026, 11, 27, 2, 2, 10, 0, time.UTC), nil, []string{"dev"}, nil},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			clock, st.unfinished, started = step.at, step.unfinished, nil
			n, err := s.Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(started)
			if n != len(step.started) || len(started) != len(step.started) || (len(started) > 0 && started[0] != step.started[0]) {
				t.Errorf("started %v (%d), want %v", started, n, step.started)
			}
			for name, msg := range step.message {
				if got := st.schedules[name].GetLastMessage(); got != msg {
					t.Errorf("%s last message %q, want %q", name, got, msg)
				}
			}
			for _, sc := range st.schedules {
				if !sc.GetNextRun().AsTime().After(step.at) {
					t.Errorf("%s next run %v is not after %v", sc.GetName(), sc.GetNextRun().AsTime(), step.at)
				}
			}
		})
	}
	if want := time.Date(2026, 10, 28, 2, 0, 5, 0, time.UTC); !st.pruned["prod"].Equal(want) {
		t.Errorf("pruned prod before %v, want %v", st.pruned["prod"], want)
	}
	if _, ok := st.pruned["dev"]; ok {
		t.Error("pruned dev, which keeps its audits forever")
	}
}
