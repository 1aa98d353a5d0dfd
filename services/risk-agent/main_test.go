package main

import "testing"

func TestParseDays(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "90": 90, "3650": 3650} {
		if got, err := parseDays("stale-days", in); err != nil || got != want {
			t.Errorf("parseDays(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5", "3651", "90d", "", "1.5"} {
		if _, err := parseDays("stale-days", in); err == nil {
			t.Errorf("parseDays(%q) accepted", in)
		}
	}
}

func TestParseDaysNamesFlag(t *testing.T) {
	_, err := parseDays("secret-max-age-days", "0")
	if err == nil || err.Error() != `-secret-max-age-days "0": want a whole number of days from 1 to 3650` {
		t.Errorf("err = %v", err)
	}
}
