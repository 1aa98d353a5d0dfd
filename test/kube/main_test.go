package kube_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"secureaudit.dev/test/kube"
)

// srv is the API server shared by the package's tests; nil under -short or
// when etcd is missing outside CI.
var srv *kube.Server

// skipReason says why srv is nil.
var skipReason = "integration test (-short)"

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	s, err := kube.Start(context.Background())
	switch {
	case errors.Is(err, kube.ErrUnavailable) && os.Getenv("CI") != "true":
		skipReason = err.Error()
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, "start kube-apiserver:", err)
		return 1
	}
	defer s.Stop()
	srv = s
	return m.Run()
}

// server returns the shared API server or skips the test.
func server(t *testing.T) *kube.Server {
	t.Helper()
	if srv == nil {
		t.Skip(skipReason)
	}
	return srv
}
