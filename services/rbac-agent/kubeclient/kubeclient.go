// Package kubeclient connects the rbac-agent to a live API server with
// client-go and adapts the clientset to collect.API. It is the only package
// of the rbac-agent that imports client-go, so that the file source (and the
// command line that reads snapshots with it) does not.
package kubeclient

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InCluster is the context name reported for the in-cluster configuration.
const InCluster = "in-cluster"

// userAgent identifies the rbac-agent in the API server's audit log.
const userAgent = "secureaudit-rbac-agent"

// Endpoint describes the API server a client talks to.
type Endpoint struct {
	// Host is the API server's URL.
	Host string
	// Context is the kubeconfig context used, or InCluster.
	Context string
	// CredentialFiles hold the credential (the kubeconfig, a token file,
	// a client certificate and key): a change of their contents is a
	// change of credential.
	CredentialFiles []string
}

// Connect builds a client from the kubeconfig file at path, using
// kubeContext or the file's current context, or from the pod's in-cluster
// configuration when inCluster is set.
func Connect(path, kubeContext string, inCluster bool) (*Client, Endpoint, error) {
	var (
		cfg *rest.Config
		ep  Endpoint
		err error
	)
	if inCluster {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("in-cluster config: %w", err)
		}
		ep.Context = InCluster
	} else {
		loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: path},
			&clientcmd.ConfigOverrides{CurrentContext: kubeContext},
		)
		raw, err := loader.RawConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		ep.Context = raw.CurrentContext
		if kubeContext != "" {
			ep.Context = kubeContext
		}
		cfg, err = loader.ClientConfig()
		if err != nil {
			return nil, ep, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	Configure(cfg)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, ep, fmt.Errorf("kubernetes client: %w", err)
	}
	ep.Host = cfg.Host
	if !inCluster {
		ep.CredentialFiles = append(ep.CredentialFiles, path)
	}
	for _, f := range []string{cfg.BearerTokenFile, cfg.CertFile, cfg.KeyFile} {
		if f != "" {
			ep.CredentialFiles = append(ep.CredentialFiles, f)
		}
	}
	return New(client), ep, nil
}

// Configure sets what the rbac-agent asks of a client configuration: its
// user agent; protobuf, the built-in types' compact encoding, for requests
// and responses (JSON accepted too, for anything served without it); and a
// client-side rate limit that lets the independent lists of a collection
// and the self-check's reviews run in parallel.
func Configure(cfg *rest.Config) {
	cfg.UserAgent = userAgent
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cfg.QPS, cfg.Burst = 50, 100
}

// Client adapts a clientset to collect.API.
type Client struct {
	c kubernetes.Interface
}

// New returns a Client reading through c.
func New(c kubernetes.Interface) *Client { return &Client{c: c} }

// Interface returns the underlying clientset (the credential self-check uses it).
func (c *Client) Interface() kubernetes.Interface { return c.c }

// ServerVersion returns the API server's git version, such as v1.37.2.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	var (
		ver *version.Info
		err error
	)
	if d, ok := c.c.Discovery().(interface {
		ServerVersionWithContext(context.Context) (*version.Info, error)
	}); ok {
		ver, err = d.ServerVersionWithContext(ctx)
	} else {
		ver, err = c.c.Discovery().ServerVersion()
	}
	if err != nil {
		return "", err
	}
	return ver.GitVersion, nil
}

// Discovery returns the API server's groups and the resources of each group
// version, in discovery order (built-in resources, CustomResourceDefinitions
// and aggregated APIs). partial is true when some groups failed (an
// aggregated API that is down): the lists then hold the others.
func (c *Client) Discovery(ctx context.Context) ([]*metav1.APIGroup, []*metav1.APIResourceList, bool, error) {
	_ = ctx // client-go's discovery takes no context
	groups, lists, err := c.c.Discovery().ServerGroupsAndResources()
	if err != nil {
		if discovery.IsGroupDiscoveryFailedError(err) && len(lists) > 0 {
			return groups, lists, true, nil
		}
		return nil, nil, false, err
	}
	return groups, lists, false, nil
}

// List lists one page of resource (namespaces, serviceaccounts, pods or one
// of the four RBAC kinds) in all namespaces.
func (c *Client) List(ctx context.Context, resource string, opts metav1.ListOptions) (runtime.Object, error) {
	core, rbac := c.c.CoreV1(), c.c.RbacV1()
	switch resource {
	case "namespaces":
		return core.Namespaces().List(ctx, opts)
	case "serviceaccounts":
		return core.ServiceAccounts(metav1.NamespaceAll).List(ctx, opts)
	case "pods":
		return core.Pods(metav1.NamespaceAll).List(ctx, opts)
	case "roles":
		return rbac.Roles(metav1.NamespaceAll).List(ctx, opts)
	case "clusterroles":
		return rbac.ClusterRoles().List(ctx, opts)
	case "rolebindings":
		return rbac.RoleBindings(metav1.NamespaceAll).List(ctx, opts)
	case "clusterrolebindings":
		return rbac.ClusterRoleBindings().List(ctx, opts)
	}
	return nil, fmt.Errorf("list %s: not a resource the rbac-agent reads", resource)
}
