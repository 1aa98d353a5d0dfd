package collect

import (
	"fmt"
	"strings"
	"testing"
)

func TestSkipStaysWithinContract(t *testing.T) {
	b := newBuilder(nil, nil)
	for i := range 1500 {
		b.skip(fmt.Sprintf("Kind%d.example.com", i))
	}
	b.skip(strings.Repeat("K", 300))
	if n := len(b.snap.Skipped); n > maxSkippedKinds {
		t.Errorf("%d skipped kinds, the contract allows %d", n, maxSkippedKinds)
	}
	var total uint32
	for k, n := range b.snap.Skipped {
		if len(k) > maxSkippedKeyLen {
			t.Errorf("key of %d bytes", len(k))
		}
		total += n
	}
	if total != 1501 {
		t.Errorf("skipped total = %d, want 1501", total)
	}
}
