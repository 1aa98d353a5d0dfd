// Package aks is the risk-agent's AKS configuration catalogue: pure
// functions over the AKS cluster's access configuration and the Azure role
// assignments that the entra-agent read from Azure Resource Manager, that
// turn weaknesses of the cluster's own settings (local accounts, Entra
// integration, Azure RBAC, API server exposure, pod and workload identity)
// into findings with stable AKS-* rule IDs. No I/O, no clock, no
// randomness. Its metadata (titles, severities, controls, rationale,
// remediation) is in the rule registry (services/risk-agent/registry).
package aks

import "secureaudit.dev/services/risk-agent/registry"

// Rule IDs. They are stable: reports and tests depend on them.
const (
	LocalAccounts    = "AKS-001"
	NoEntra          = "AKS-002"
	NoAzureRBAC      = "AKS-003"
	PublicAPIServer  = "AKS-004"
	PodIdentityAddon = "AKS-005"
	NoWorkloadID     = "AKS-006"
	NoKubernetesRBAC = "AKS-007"
	AzureAdmin       = "AKS-008"
	StandingAdmin    = "AKS-009"
)

// Rule describes one rule: the registry's type (package registry holds the
// metadata of every rule of every family, the AKS rules in
// services/risk-agent/registry/aks.go).
type Rule = registry.Rule

// Catalogue returns the AKS rules of the registry, ordered by ID. The
// result is a copy.
func Catalogue() []Rule { return registry.Of(registry.AKS) }

func ruleByID(id string) Rule { return registry.MustLookup(id) }
