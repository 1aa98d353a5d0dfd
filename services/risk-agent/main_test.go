package main

import "testing"

func TestParseStaleDays(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "90": 90, "3650": 3650} {
		if got, err := parseStaleDays(in); err != nil || got != want {
			t.Errorf("parseStaleDays(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5", "3651", "90d", "", "1.5"} {
		if _, err := parseStaleDays(in); err == nil {
			t.Errorf("parseStaleDays(%q) accepted", in)
		}
	}
}
