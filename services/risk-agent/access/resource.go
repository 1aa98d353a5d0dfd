package access

import (
	"fmt"
	"strings"

	"secureaudit.dev/services/risk-agent/discovery"
)

// ParseRequest returns the attributes of a request to verb resource in
// namespace (empty for all namespaces), optionally on the object name, as
// kubectl auth can-i builds them. resource is read with the table
// (discovery.Table.Resolve): "pods", "pods/log", "deploy", "deployment",
// "deployments.apps", "ingresses.v1.networking.k8s.io",
// "deployments.apps/scale", "*"; an unknown resource or subresource is an
// error naming the nearest known ones. A cluster-scoped resource is
// requested without a namespace, as the API server sees such a request,
// whatever namespace is given. A resource starting with '/' is a
// non-resource URL, such as "/metrics", and ignores namespace and name.
func ParseRequest(t *discovery.Table, verb, resource, namespace, name string) (Attributes, error) {
	if strings.HasPrefix(resource, "/") {
		return Attributes{Verb: verb, Path: resource}, nil
	}
	r, err := t.Resolve(resource)
	if err != nil {
		return Attributes{}, fmt.Errorf("resource %s: %w", resource, err)
	}
	if !r.Namespaced {
		namespace = ""
	}
	return Attributes{
		ResourceRequest: true,
		Verb:            verb,
		APIGroup:        r.Group,
		Resource:        r.Resource,
		Subresource:     r.Subresource,
		Namespace:       namespace,
		Name:            name,
	}, nil
}
