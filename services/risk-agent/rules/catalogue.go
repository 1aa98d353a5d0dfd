// Package rules is the risk-agent's deterministic rule catalogue: pure
// functions over an immutable snapshot (no I/O, no clock, no randomness) that
// turn RBAC grants into findings with stable rule IDs, severities and the
// reason for them, control mappings and remediation commands. The same
// snapshot always yields the same findings in the same order.
package rules

import (
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/registry"
)

// CatalogueVersion identifies the rule catalogue (registry.Version); it
// changes whenever a rule's semantics, severity or text changes.
const CatalogueVersion = registry.Version

// Rule IDs. They are stable: other agents, reports and tests depend on them.
// Each rule's metadata (title, severity, controls, rationale, remediation)
// is in the registry (services/risk-agent/registry/rbac.go).
const (
	ClusterAdmin           = "RBAC-001"
	AdminEditCluster       = "RBAC-002"
	SecretsRead            = "RBAC-003"
	Wildcard               = "RBAC-004"
	PodCreate              = "RBAC-005"
	PodExec                = "RBAC-006"
	DefaultSA              = "RBAC-007"
	SystemMasters          = "RBAC-008"
	EscalationVerbs        = "RBAC-009"
	DanglingBinding        = "RBAC-010"
	DefaultSAInUse         = "RBAC-011"
	TokenAutomount         = "RBAC-012"
	PVCreate               = "RBAC-013"
	NodesProxy             = "RBAC-014"
	CSRApproval            = "RBAC-015"
	WebhookWrite           = "RBAC-016"
	TokenCreate            = "RBAC-017"
	BindCreate             = "RBAC-018"
	SecretsWritePrivileged = "RBAC-019"
	WorkloadWrite          = "RBAC-020"
	PodPatch               = "RBAC-021"
	EphemeralContainers    = "RBAC-022"
	PortForward            = "RBAC-023"
	AdmissionPolicyWrite   = "RBAC-024"
	CRDWrite               = "RBAC-025"
	NodeWrite              = "RBAC-026"
	PodEvictPrivileged     = "RBAC-027"
	StatusWrite            = "RBAC-028"
	NetworkWrite           = "RBAC-029"
	ConfigMapWrite         = "RBAC-030"
	DestructiveDelete      = "RBAC-031"
	EventsDelete           = "RBAC-032"
	Anonymous              = "RBAC-033"
	AllAuthenticated       = "RBAC-034"
	BuiltinWidened         = "RBAC-035"
	AggregatesIntoBuiltin  = "RBAC-036"
	UnboundDangerous       = "RBAC-037"
	MissingServiceAccount  = "RBAC-038"
	BlastRadius            = "RBAC-039"
	RBACWrite              = "RBAC-040"
	TooLarge               = "RBAC-050"
	ControllerEscalation   = "RBAC-041"
	APIServiceWrite        = "RBAC-042"
	NamespaceWrite         = "RBAC-043"
)

// Rule describes one rule: the registry's type (package registry holds the
// metadata of every rule of every family).
type Rule = registry.Rule

const (
	critical = secureauditv1.Severity_SEVERITY_CRITICAL
	high     = secureauditv1.Severity_SEVERITY_HIGH
	medium   = secureauditv1.Severity_SEVERITY_MEDIUM
	low      = secureauditv1.Severity_SEVERITY_LOW
	info     = secureauditv1.Severity_SEVERITY_INFO
)

// Catalogue returns the RBAC rules of the registry, ordered by ID. The
// result is a copy.
func Catalogue() []Rule {
	return registry.Of(registry.RBAC)
}

func ruleByID(id string) Rule {
	return registry.MustLookup(id)
}
