// Package identity is the risk-agent's identity rule catalogue: pure
// functions over an immutable RBAC snapshot, the directory objects the
// entra-agent resolved for it and the RBAC findings, that turn who the
// principals are (guests, disabled or stale accounts, deleted groups, CI/CD
// identities, workload identities, second paths through Azure RBAC) into
// findings with stable ENTRA-* rule IDs. No I/O, no clock, no randomness:
// "now" is the snapshot's collection time.
package identity

import (
	"secureaudit.dev/services/risk-agent/registry"
)

// Rule IDs. They are stable: reports and tests depend on them.
const (
	DeletedGroup      = "ENTRA-001" // E1
	Guest             = "ENTRA-002" // E2
	Disabled          = "ENTRA-003" // E3
	MissingWorkloadID = "ENTRA-004" // E4
	PipelineAdmin     = "ENTRA-005" // E5
	PodIdentity       = "ENTRA-006" // E6
	ManyGroups        = "ENTRA-007" // E7
	AzurePath         = "ENTRA-008" // E8
	PipelineSecret    = "ENTRA-009" // E9
	Stale             = "ENTRA-010"
	GroupOwner        = "ENTRA-011"
	GroupPeople       = "ENTRA-012"
	CredentialHygiene = "ENTRA-013"
)

// RBAC rule IDs the identity rules read (see package rules; the IDs are
// stable contracts, so they are not imported).
const (
	rbacClusterAdmin    = "RBAC-001"
	rbacEscalationVerbs = "RBAC-009"
)

// Rule describes one rule: the registry's type (package registry holds the
// metadata of every rule of every family, the identity rules in
// services/risk-agent/registry/identity.go).
type Rule = registry.Rule

// Catalogue returns the identity rules of the registry, ordered by ID. The
// result is a copy.
func Catalogue() []Rule {
	return registry.Of(registry.Identity)
}

func ruleByID(id string) Rule {
	return registry.MustLookup(id)
}
