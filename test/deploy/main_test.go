package deploy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"secureaudit.dev/test/kube"
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if apiServer.srv != nil {
		apiServer.srv.Stop()
	}
	os.Exit(code)
}

// apiServer is the real kube-apiserver (test/kube's harness) shared by the
// tests that submit manifests, started by the first that asks.
var apiServer struct {
	once sync.Once
	srv  *kube.Server
	err  error
}

// server returns the shared API server, or skips the test under -short and,
// outside CI, where etcd is missing.
func server(t *testing.T) *kube.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a kube-apiserver (-short)")
	}
	apiServer.once.Do(func() {
		apiServer.srv, apiServer.err = kube.Start(context.Background())
	})
	switch err := apiServer.err; {
	case errors.Is(err, kube.ErrUnavailable) && os.Getenv("CI") != "true":
		t.Skip(err)
	case err != nil:
		t.Fatal(fmt.Errorf("start kube-apiserver: %w", err))
	}
	return apiServer.srv
}
