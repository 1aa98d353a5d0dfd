package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestRealMainRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no source", nil, "no source"},
		{"two sources", []string{"-snapshot", "x.yaml", "-in-cluster"}, "more than one source"},
		{"snapshot and kubeconfig", []string{"-snapshot", "x.yaml", "-kubeconfig", "k"}, "more than one source"},
		{"context without kubeconfig", []string{"-in-cluster", "-context", "prod"}, "-context needs -kubeconfig"},
		{"invalid cluster", []string{"-snapshot", "x.yaml", "-cluster", "prod/west"}, `-cluster "prod/west"`},
		{"stray argument", []string{"-snapshot", "x.yaml", "extra"}, "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SECUREAUDIT_SNAPSHOT", "")
			t.Setenv("SECUREAUDIT_KUBECONFIG", "")
			t.Setenv("SECUREAUDIT_IN_CLUSTER", "")
			err := realMain(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("realMain(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
