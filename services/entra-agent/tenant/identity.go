package tenant

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// Log attribute keys.
const (
	keyServicePrincipal = "service_principal"
	keyResourceID       = "resource_id"
	keyReason           = "reason"
)

// identityChain is the resource-type ancestry of a user-assigned managed
// identity: a resource of a resource group, not an extension of another
// resource.
var identityChain = []arm.ResourceType{
	arm.TenantResourceType,
	arm.SubscriptionResourceType,
	arm.ResourceGroupResourceType,
	arm.NewResourceType("Microsoft.ManagedIdentity", "userAssignedIdentities"),
}

// identities holds the armmsi clients, one factory per subscription: a
// managed identity may live in any subscription of the tenant, named by its
// resource ID.
type identities struct {
	cred azcore.TokenCredential
	opts *arm.ClientOptions

	mu   sync.Mutex
	subs map[string]*armmsi.ClientFactory
}

func newIdentities(cred azcore.TokenCredential, opts *arm.ClientOptions) *identities {
	return &identities{cred: cred, opts: opts, subs: map[string]*armmsi.ClientFactory{}}
}

func (c *identities) factory(subscription string) (*armmsi.ClientFactory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := lower(subscription)
	if f, ok := c.subs[key]; ok {
		return f, nil
	}
	f, err := armmsi.NewClientFactory(subscription, c.cred, c.opts)
	if err != nil {
		return nil, fmt.Errorf("managed identity clients: %w", err)
	}
	c.subs[key] = f
	return f, nil
}

// identityOf returns the ARM resource ID of the user-assigned managed
// identity behind a service principal: Graph lists it among the
// alternativeNames of a ManagedIdentity service principal
// ("/subscriptions/…/resourcegroups/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME",
// beside "isExplicit=True"). It returns nil for any other service
// principal, system-assigned identities included (their alternativeNames
// name the Azure resource they belong to).
func identityOf(sp models.ServicePrincipalable) *arm.ResourceID {
	if !strings.EqualFold(deref(sp.GetServicePrincipalType()), "ManagedIdentity") {
		return nil
	}
	for _, name := range sp.GetAlternativeNames() {
		id, err := arm.ParseResourceID(name)
		if err == nil && id.ValidateResourceTypeChain(identityChain) == nil {
			return id
		}
	}
	return nil
}

// enrichIdentities reads, for every service principal of a user-assigned
// managed identity, the identity in ARM and its federated identity
// credentials.
func (r *run) enrichIdentities(ctx context.Context) {
	type todo struct {
		sp *secureauditv1.DirectoryServicePrincipal
		id *arm.ResourceID
	}
	r.mu.Lock()
	var found []todo
	for spID, id := range r.identities {
		if sp, ok := r.sps[spID]; ok {
			found = append(found, todo{sp, id})
		}
	}
	r.mu.Unlock()
	for _, f := range found {
		r.spawn(func() {
			if err := r.identity(ctx, f.sp, f.id); err != nil {
				r.fail("managed identity "+f.id.String(), err)
			}
		})
	}
}

// identity sets sp's resource ID and federated credentials from the
// user-assigned managed identity id. An identity that ARM no longer has
// (404), or that belongs to another service principal (deleted and created
// again under the same name), leaves sp as Graph described it: the
// directory still lists a service principal whose identity is gone, which is
// no failure of the lookup.
func (r *run) identity(ctx context.Context, sp *secureauditv1.DirectoryServicePrincipal, id *arm.ResourceID) error {
	f, err := r.s.identities.factory(id.SubscriptionID)
	if err != nil {
		return err
	}
	gone := func(why string) error {
		r.s.log.DebugContext(ctx, "managed identity gone from ARM", keyServicePrincipal, sp.GetId(), keyResourceID, id.String(), keyReason, why)
		return nil
	}
	var ident armmsi.UserAssignedIdentitiesClientGetResponse
	err = r.call(ctx, func() (err error) {
		ident, err = f.NewUserAssignedIdentitiesClient().Get(ctx, id.ResourceGroupName, id.Name, nil)
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return gone("not found")
	}
	if err != nil {
		return err
	}
	if p := ident.Properties; p == nil || !strings.EqualFold(deref(p.PrincipalID), sp.GetId()) {
		return gone("its principalId is not the service principal's")
	}
	var creds []*secureauditv1.FederatedCredential
	pager := f.NewFederatedIdentityCredentialsClient().NewListPager(id.ResourceGroupName, id.Name, nil)
	for pager.More() {
		var page armmsi.FederatedIdentityCredentialsClientListResponse
		err := r.call(ctx, func() (err error) {
			page, err = pager.NextPage(ctx)
			return err
		})
		if statusOf(err) == http.StatusNotFound {
			return gone("deleted while its federated credentials were listed")
		}
		if err != nil {
			return fmt.Errorf("federated identity credentials: %w", err)
		}
		for _, fc := range page.Value {
			if fc == nil || fc.Properties == nil {
				continue
			}
			creds = append(creds, &secureauditv1.FederatedCredential{
				Name:    clip(deref(fc.Name), 256),
				Issuer:  clip(deref(fc.Properties.Issuer), 1024),
				Subject: clip(deref(fc.Properties.Subject), 1024),
			})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sp.ResourceId = clip(cmp.Or(deref(ident.ID), id.String()), 1024)
	sp.FederatedCredentials = creds[:min(len(creds), 100)]
	return nil
}
