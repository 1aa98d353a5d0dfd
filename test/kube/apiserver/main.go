// Command kube-apiserver is the upstream Kubernetes API server, built from
// the k8s.io/kubernetes module at the version matching the client-go the
// project uses. It exists only so that integration tests run against the real
// authorizer; the test/kube harness builds it once and caches the binary.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
