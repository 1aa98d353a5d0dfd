// Package rbac embeds the Kubernetes manifests that give each agent its
// identity and read-only access in the audited cluster.
package rbac

import (
	_ "embed"
)

//go:embed rbac-agent.yaml
var rbacAgent []byte

// RBACAgent returns the manifests of the rbac-agent: its Namespace,
// ServiceAccount, read-only ClusterRole and ClusterRoleBinding, as
// multi-document YAML.
func RBACAgent() []byte { return append([]byte(nil), rbacAgent...) }
