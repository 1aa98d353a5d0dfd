package tenant

import (
	"context"
	"time"
)

// RunTicks is Run with the ticks given, for tests.
func (m *Monitor) RunTicks(ctx context.Context, ticks <-chan time.Time) error {
	return m.run(ctx, ticks)
}
