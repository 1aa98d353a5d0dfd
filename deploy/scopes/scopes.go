// Package scopes embeds the agent scope manifests, one per service, so that
// each binary carries the manifest it was built and reviewed with.
package scopes

import (
	"embed"
	"fmt"
)

//go:embed *.yaml
var files embed.FS

// Manifest returns the scope manifest of a workload, such as "risk-agent".
func Manifest(workload string) ([]byte, error) {
	data, err := files.ReadFile(workload + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no scope manifest for %q: %w", workload, err)
	}
	return data, nil
}
