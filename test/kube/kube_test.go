package kube_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"secureaudit.dev/test/kube"
)

func TestServer(t *testing.T) {
	s := server(t)
	admin, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := admin.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != kube.Version {
		t.Errorf("server version %s, want %s", v.GitVersion, kube.Version)
	}
	// RBAC is on: the bootstrap roles exist.
	if _, err := admin.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{}); err != nil {
		t.Errorf("get clusterrole cluster-admin: %v", err)
	}
}
