package tenant

import (
	"testing"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
)

func TestIdentityOf(t *testing.T) {
	// Graph writes "resourcegroups"; the parsed ID reads as ARM writes it.
	const (
		uami = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourcegroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci"
		want = "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci"
	)
	tests := []struct {
		name  string
		typ   string
		names []string
		want  string // the resource ID found, "" for none
	}{
		{name: "user-assigned", typ: "ManagedIdentity", names: []string{"isExplicit=True", uami}, want: want},
		{name: "type in another case", typ: "managedidentity", names: []string{uami}, want: want},
		{
			name:  "system-assigned names its virtual machine",
			typ:   "ManagedIdentity",
			names: []string{"isExplicit=False", "/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/vm-1"},
		},
		{
			name:  "identity as an extension of another resource",
			typ:   "ManagedIdentity",
			names: []string{"/subscriptions/5f3e8c21-9a4b-4d6e-8f1a-2b7c9d0e3f45/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/vm-1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci"},
		},
		{name: "an application", typ: "Application", names: []string{uami}},
		{name: "no alternative names", typ: "ManagedIdentity"},
		{name: "not a resource ID", typ: "ManagedIdentity", names: []string{"isExplicit=True", "id-ci", "subscriptions/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := models.NewServicePrincipal()
			sp.SetServicePrincipalType(&tt.typ)
			sp.SetAlternativeNames(tt.names)
			got := ""
			if id := identityOf(sp); id != nil {
				got = id.String()
			}
			if got != tt.want {
				t.Errorf("identityOf = %q, want %q", got, tt.want)
			}
		})
	}
}
