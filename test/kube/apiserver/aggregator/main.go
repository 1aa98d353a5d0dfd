// Command aggregator runs the upstream clusterrole-aggregation controller
// (k8s.io/kubernetes pkg/controller/clusterroleaggregation) against the API
// server of a kubeconfig, as kube-controller-manager runs it: a shared
// informer on ClusterRoles and five workers, until SIGTERM. The test harness
// (kube.StartAggregation) runs it beside its kube-apiserver, so that
// aggregated ClusterRoles are filled in as in a real cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aggregator:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	flag.Parse()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rest.AddUserAgent(cfg, "clusterrole-aggregation-controller"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	factory := informers.NewSharedInformerFactory(client, 0)
	c := clusterroleaggregation.NewClusterRoleAggregation(factory.Rbac().V1().ClusterRoles(), client.RbacV1())
	factory.Start(ctx.Done())
	fmt.Println("aggregator: running") // the harness waits for this line
	c.Run(ctx, 5)
	factory.Shutdown()
	return nil
}
