package synth_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"secureaudit.dev/services/risk-agent/synth"
)

func TestDeterministicAndSized(t *testing.T) {
	for _, n := range []int{1000, 10000} {
		a, b := synth.Cluster(7, n), synth.Cluster(7, n)
		if !proto.Equal(a, b) {
			t.Errorf("%d: same seed, different snapshots", n)
		}
		if proto.Equal(a, synth.Cluster(8, n)) {
			t.Errorf("%d: different seeds, same snapshot", n)
		}
		if got := synth.Objects(a); got < n*9/10 || got > n*11/10 {
			t.Errorf("Cluster(%d) has %d objects", n, got)
		}
	}
}
