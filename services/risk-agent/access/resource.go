package access

import "strings"

// groups maps the resources of the built-in API groups to their group, so
// that a query can name "deployments" rather than "deployments.apps".
var groups = map[string]string{
	"bindings": "", "componentstatuses": "", "configmaps": "", "endpoints": "", "events": "",
	"limitranges": "", "namespaces": "", "nodes": "", "persistentvolumeclaims": "",
	"persistentvolumes": "", "pods": "", "podtemplates": "", "replicationcontrollers": "",
	"resourcequotas": "", "secrets": "", "serviceaccounts": "", "services": "",
	"controllerrevisions": "apps", "daemonsets": "apps", "deployments": "apps",
	"replicasets": "apps", "statefulsets": "apps",
	"cronjobs": "batch", "jobs": "batch",
	"horizontalpodautoscalers": "autoscaling",
	"clusterrolebindings":      "rbac.authorization.k8s.io", "clusterroles": "rbac.authorization.k8s.io",
	"rolebindings": "rbac.authorization.k8s.io", "roles": "rbac.authorization.k8s.io",
	"ingressclasses": "networking.k8s.io", "ingresses": "networking.k8s.io",
	"networkpolicies":                   "networking.k8s.io",
	"poddisruptionbudgets":              "policy",
	"certificatesigningrequests":        "certificates.k8s.io",
	"mutatingwebhookconfigurations":     "admissionregistration.k8s.io",
	"validatingwebhookconfigurations":   "admissionregistration.k8s.io",
	"validatingadmissionpolicies":       "admissionregistration.k8s.io",
	"validatingadmissionpolicybindings": "admissionregistration.k8s.io",
	"mutatingadmissionpolicies":         "admissionregistration.k8s.io",
	"mutatingadmissionpolicybindings":   "admissionregistration.k8s.io",
	"customresourcedefinitions":         "apiextensions.k8s.io",
	"apiservices":                       "apiregistration.k8s.io",
	"csidrivers":                        "storage.k8s.io", "csinodes": "storage.k8s.io", "storageclasses": "storage.k8s.io",
	"volumeattachments": "storage.k8s.io",
	"leases":            "coordination.k8s.io",
	"endpointslices":    "discovery.k8s.io",
	"priorityclasses":   "scheduling.k8s.io",
	"runtimeclasses":    "node.k8s.io",
	"tokenreviews":      "authentication.k8s.io", "selfsubjectreviews": "authentication.k8s.io",
	"localsubjectaccessreviews": "authorization.k8s.io", "selfsubjectaccessreviews": "authorization.k8s.io",
	"selfsubjectrulesreviews": "authorization.k8s.io", "subjectaccessreviews": "authorization.k8s.io",
	"flowschemas": "flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations": "flowcontrol.apiserver.k8s.io",
}

// Request returns the attributes of a request to verb resource in namespace
// (empty for cluster-scoped or all namespaces), optionally on the object
// name. resource is written as kubectl does: "pods", "pods/log",
// "deployments.apps", "deployments.apps/scale", or "deployments" for a
// built-in resource whose group is known; an unknown resource without a
// group is taken to be in the core group. A resource starting with '/' is a
// non-resource URL, such as "/metrics", and ignores namespace and name.
func Request(verb, resource, namespace, name string) Attributes {
	if strings.HasPrefix(resource, "/") {
		return Attributes{Verb: verb, Path: resource}
	}
	res, sub, _ := strings.Cut(resource, "/")
	res, group, dotted := strings.Cut(res, ".")
	if !dotted {
		group = groups[res]
	}
	return Attributes{
		ResourceRequest: true,
		Verb:            verb,
		APIGroup:        group,
		Resource:        res,
		Subresource:     sub,
		Namespace:       namespace,
		Name:            name,
	}
}
