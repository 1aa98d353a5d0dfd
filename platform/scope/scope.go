// Package scope reads agent scope manifests: the versioned, reviewable
// declaration of what each service is for, which methods it serves, who may
// call each of them, where it may connect, and which credential it holds.
// The authorization table of every server is built from its manifest.
package scope

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"secureaudit.dev/platform/identity"
)

// APIVersion and Kind identify a scope manifest.
const (
	APIVersion = "secureaudit.dev/v1"
	Kind       = "AgentScope"
)

// Manifest is one service's scope.
type Manifest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	digest string
}

// Metadata names the manifest.
type Metadata struct {
	// Name is the workload name, such as risk-agent.
	Name string `json:"name"`
	// Version increases with every approved change.
	Version int `json:"version"`
}

// Spec is what the service may do.
type Spec struct {
	// Domain is the single question the service answers.
	Domain string `json:"domain"`
	// Identity is the service's SPIFFE ID.
	Identity string `json:"identity"`
	// Methods lists every RPC the service serves and who may call it.
	Methods []Method `json:"methods"`
	// Egress lists the destinations the service may connect to.
	Egress []string `json:"egress"`
	// Credential is the credential the service holds.
	Credential Credential `json:"credential"`
	// Permissions are the exact permissions the credential needs, as
	// free-form rules of the target system (Kubernetes rules, Graph roles).
	Permissions []map[string]any `json:"permissions,omitempty"`
}

// Method is one RPC and its allowed callers.
type Method struct {
	// Name is the full method name, /package.Service/Method.
	Name string `json:"name"`
	// Callers are the SPIFFE IDs allowed to call it.
	Callers []string `json:"callers,omitempty"`
	// Role, on a public API (the orchestrator's), is the role a caller
	// needs to call it: viewer, operator, approver or auditor. Which
	// callers hold which role is the deployment's caller policy
	// (platform/authz.Callers), not the manifest.
	Role string `json:"role,omitempty"`
}

// Credential describes the credential a service holds.
type Credential struct {
	// Kind is none, kubernetes-service-account, azure-workload-identity or api-key.
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
}

// Parse reads a manifest and checks it: a known kind, a name, an identity in
// the trust domain, and well-formed, non-repeated methods and callers.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, fmt.Errorf("parse scope manifest: %w", err)
	}
	if m.APIVersion != APIVersion || m.Kind != Kind {
		return nil, fmt.Errorf("scope manifest: want apiVersion %s and kind %s, got %q and %q", APIVersion, Kind, m.APIVersion, m.Kind)
	}
	if m.Metadata.Name == "" {
		return nil, errors.New("scope manifest: metadata.name is empty")
	}
	if m.Metadata.Version < 1 {
		return nil, fmt.Errorf("scope manifest %s: metadata.version must be at least 1", m.Metadata.Name)
	}
	// Identities written with the default trust domain and namespace are
	// resolved against the configured ones (identity.Resolve).
	m.Spec.Identity = identity.Resolve(m.Spec.Identity)
	for i := range m.Spec.Methods {
		for j, c := range m.Spec.Methods[i].Callers {
			m.Spec.Methods[i].Callers[j] = identity.Resolve(c)
		}
	}
	if _, err := identity.Parse(m.Spec.Identity); err != nil {
		return nil, fmt.Errorf("scope manifest %s: spec.identity: %w", m.Metadata.Name, err)
	}
	seen := map[string]bool{}
	for i, meth := range m.Spec.Methods {
		if !strings.HasPrefix(meth.Name, "/") || strings.Count(meth.Name, "/") != 2 {
			return nil, fmt.Errorf("scope manifest %s: spec.methods[%d].name %q is not a full method name", m.Metadata.Name, i, meth.Name)
		}
		if seen[meth.Name] {
			return nil, fmt.Errorf("scope manifest %s: spec.methods[%d]: %s is listed twice", m.Metadata.Name, i, meth.Name)
		}
		seen[meth.Name] = true
		for j, c := range meth.Callers {
			if _, err := identity.Parse(c); err != nil {
				return nil, fmt.Errorf("scope manifest %s: spec.methods[%d].callers[%d]: %w", m.Metadata.Name, i, j, err)
			}
		}
	}
	sum := sha256.Sum256(data)
	m.digest = "sha256:" + hex.EncodeToString(sum[:])
	return &m, nil
}

// Digest is the SHA-256 of the manifest as read, the value approvals refer to.
func (m *Manifest) Digest() string { return m.digest }
