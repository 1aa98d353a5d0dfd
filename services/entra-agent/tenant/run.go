package tenant

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/applicationswithappid"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/identitygovernance"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	"github.com/microsoftgraph/msgraph-sdk-go/serviceprincipalswithappid"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// Graph $select lists: only the fields the audit reads.
var (
	userFields      = []string{"id", "userPrincipalName", "displayName", "userType", "accountEnabled"}
	userSignIn      = append(slices.Clone(userFields), "signInActivity")
	signInFields    = []string{"id", "signInActivity"}
	groupFields     = []string{"id", "displayName", "description"}
	spFields        = []string{"id", "appId", "displayName", "servicePrincipalType", "passwordCredentials", "keyCredentials", "alternativeNames"}
	memberFields    = []string{"id", "userPrincipalName", "displayName", "userType", "accountEnabled", "description", "appId", "servicePrincipalType", "alternativeNames", "passwordCredentials", "keyCredentials"}
	applicationKeys = []string{"id", "passwordCredentials", "keyCredentials"}
)

// run is the state of one Resolve call. Its maps are guarded by mu; the
// semaphore bounds the Graph and ARM requests in flight.
type run struct {
	s *Source
	// scope is the AKS cluster whose Azure access the run reads, nil when
	// none.
	scope *clusterScope
	// defs caches the role definitions read: the Source's for a Resolve,
	// the check's own for a credential self-check, which reads them again
	// every time so that a changed role is noticed.
	defs *sync.Map
	sem  chan struct{}
	wg   sync.WaitGroup

	mu          sync.Mutex
	users       map[string]*secureauditv1.DirectoryUser
	groups      map[string]*secureauditv1.DirectoryGroup
	sps         map[string]*secureauditv1.DirectoryServicePrincipal
	expanded    map[string]bool
	unresolved  map[string]*secureauditv1.Principal
	errs        []*secureauditv1.LookupError
	assigned    []*secureauditv1.AzureRoleAssignment
	cluster     *secureauditv1.AksCluster
	denies      []*secureauditv1.AzureDenyAssignment
	denyGroups  map[string]bool            // groups named by deny assignments (read by denyAssignments alone)
	noSignIn    bool                       // the credential may not read signInActivity
	signedIn    map[string]bool            // users read with signInActivity
	identities  map[string]*arm.ResourceID // service principal ID -> its user-assigned managed identity
	activated   map[string]bool            // lower-case IDs of role assignments that are PIM activations
	noPIM       bool                       // the credential may not read PIM for Groups' eligibility
	noPIMActive bool                       // nor its activations
}

func newRun(s *Source) *run {
	return &run{
		s:          s,
		defs:       &s.roleDefs,
		sem:        make(chan struct{}, s.cfg.Concurrency),
		users:      map[string]*secureauditv1.DirectoryUser{},
		groups:     map[string]*secureauditv1.DirectoryGroup{},
		sps:        map[string]*secureauditv1.DirectoryServicePrincipal{},
		expanded:   map[string]bool{},
		unresolved: map[string]*secureauditv1.Principal{},
		signedIn:   map[string]bool{},
		identities: map[string]*arm.ResourceID{},
		activated:  map[string]bool{},
		denyGroups: map[string]bool{},
	}
}

func (r *run) spawn(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// call runs one request within the concurrency bound.
func (r *run) call(ctx context.Context, f func() error) error {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.sem }()
	return f()
}

func (r *run) fail(lookup string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, &secureauditv1.LookupError{Lookup: lookup, Message: clip(err.Error(), 4096)})
}

func (r *run) notFound(p *secureauditv1.Principal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unresolved[p.GetKind().String()+"/"+p.GetName()] = p
}

// principal resolves one requested principal.
func (r *run) principal(ctx context.Context, p *secureauditv1.Principal) {
	name := p.GetName()
	switch p.GetKind() {
	case secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER:
		found, err := r.user(ctx, name)
		if err == nil && !found && isGUID(name) {
			found, err = r.servicePrincipal(ctx, name)
		}
		r.settle(p, "user "+name, found, err)
	case secureauditv1.PrincipalKind_PRINCIPAL_KIND_GROUP:
		if !isGUID(name) { // Graph names groups by object ID only
			r.notFound(p)
			return
		}
		found, err := r.group(ctx, name)
		r.settle(p, "group "+name, found, err)
	case secureauditv1.PrincipalKind_PRINCIPAL_KIND_CLIENT_ID:
		if !isGUID(name) {
			r.notFound(p)
			return
		}
		found, err := r.servicePrincipalByApp(ctx, name)
		r.settle(p, "service principal with app id "+name, found, err)
	}
}

func (r *run) settle(p *secureauditv1.Principal, lookup string, found bool, err error) {
	switch {
	case err != nil:
		r.fail(lookup, err)
	case !found:
		r.notFound(p)
	}
}

// user looks a user up by object ID or UPN, with its last sign-in when the
// credential may read it.
func (r *run) user(ctx context.Context, name string) (bool, error) {
	r.mu.Lock()
	fields := userSignIn
	if r.noSignIn {
		fields = userFields
	}
	r.mu.Unlock()
	var u models.Userable
	err := r.call(ctx, func() (err error) {
		u, err = r.s.graph.Users().ByUserId(name).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: fields},
		})
		return err
	})
	if statusOf(err) == http.StatusForbidden && len(fields) == len(userSignIn) {
		// Without AuditLog.Read.All signInActivity is refused: read the rest.
		r.mu.Lock()
		r.noSignIn = true
		r.mu.Unlock()
		return r.user(ctx, name)
	}
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.addUser(u)
	if len(fields) == len(userSignIn) {
		r.mu.Lock()
		r.signedIn[lower(deref(u.GetId()))] = true
		r.mu.Unlock()
	}
	return true, nil
}

func (r *run) servicePrincipal(ctx context.Context, id string) (bool, error) {
	var sp models.ServicePrincipalable
	err := r.call(ctx, func() (err error) {
		sp, err = r.s.graph.ServicePrincipals().ByServicePrincipalId(id).Get(ctx, &serviceprincipals.ServicePrincipalItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipals.ServicePrincipalItemRequestBuilderGetQueryParameters{Select: spFields},
		})
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.addSP(sp)
	return true, nil
}

func (r *run) servicePrincipalByApp(ctx context.Context, appID string) (bool, error) {
	var sp models.ServicePrincipalable
	err := r.call(ctx, func() (err error) {
		sp, err = r.s.graph.ServicePrincipalsWithAppId(&appID).Get(ctx, &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetRequestConfiguration{
			QueryParameters: &serviceprincipalswithappid.ServicePrincipalsWithAppIdRequestBuilderGetQueryParameters{Select: spFields},
		})
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.addSP(sp)
	return true, nil
}

// group looks a group up by object ID and expands it.
func (r *run) group(ctx context.Context, id string) (bool, error) {
	var g models.Groupable
	err := r.call(ctx, func() (err error) {
		g, err = r.s.graph.Groups().ByGroupId(id).Get(ctx, &groups.GroupItemRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.GroupItemRequestBuilderGetQueryParameters{Select: groupFields},
		})
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.addGroup(g)
	r.expand(ctx, lower(deref(g.GetId())))
	return true, nil
}

// expand reads a group's direct members and owners, every page, once per
// group, and expands the groups among its members concurrently.
func (r *run) expand(ctx context.Context, id string) {
	r.mu.Lock()
	if r.expanded[id] {
		r.mu.Unlock()
		return
	}
	r.expanded[id] = true
	r.mu.Unlock()

	members, err := r.page(ctx, id, false)
	if err != nil {
		r.fail("group "+id+"/members", err)
	}
	owners, err := r.page(ctx, id, true)
	if err != nil {
		r.fail("group "+id+"/owners", err)
	}
	var nested []string
	var memberIDs, ownerIDs []string
	for _, o := range members {
		oid := lower(deref(o.GetId()))
		memberIDs = append(memberIDs, oid)
		if g, ok := o.(models.Groupable); ok {
			r.addGroup(g)
			nested = append(nested, oid)
		} else {
			r.addObject(o)
		}
	}
	for _, o := range owners {
		ownerIDs = append(ownerIDs, lower(deref(o.GetId())))
		if _, ok := o.(models.Groupable); !ok {
			r.addObject(o)
		}
	}
	eligible, eligibleOwners, err := r.eligibleMembers(ctx, id)
	if err != nil {
		r.fail("group "+id+"/eligible members (PIM for Groups)", err)
	}
	activated, ends, err := r.activatedMembers(ctx, id)
	if err != nil {
		r.fail("group "+id+"/activated members (PIM for Groups)", err)
	}
	r.mu.Lock()
	g := r.groups[id]
	g.MemberIds = append(g.MemberIds, memberIDs...)
	g.OwnerIds = append(g.OwnerIds, ownerIDs...)
	g.EligibleMemberIds = append(g.EligibleMemberIds, eligible...)
	g.ActivatedMemberIds = append(g.ActivatedMemberIds, activated...)
	g.EligibleOwnerIds = append(g.EligibleOwnerIds, eligibleOwners...)
	for m, end := range ends {
		if g.ActivationEnds == nil {
			g.ActivationEnds = map[string]*timestamppb.Timestamp{}
		}
		g.ActivationEnds[m] = end
	}
	r.mu.Unlock()
	// An eligible owner is resolved as a user (owners that are service
	// principals are not people to review).
	for _, o := range eligibleOwners {
		r.spawn(func() {
			found, err := r.user(ctx, o)
			if err == nil && !found {
				found, err = r.servicePrincipal(ctx, o)
			}
			switch {
			case err != nil:
				r.fail("eligible owner "+o+" of group "+id, err)
			case !found:
				r.notFound(&secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: o})
			}
		})
	}
	for _, child := range nested {
		r.spawn(func() { r.expand(ctx, child) })
	}
	// An eligible member is resolved as a user, else as a group (expanded:
	// its members become members on activation), else as a service
	// principal.
	for _, m := range eligible {
		r.spawn(func() {
			found, err := r.user(ctx, m)
			if err == nil && !found {
				found, err = r.group(ctx, m)
			}
			if err == nil && !found {
				found, err = r.servicePrincipal(ctx, m)
			}
			switch {
			case err != nil:
				r.fail("eligible member "+m+" of group "+id, err)
			case !found:
				r.notFound(&secureauditv1.Principal{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: m})
			}
		})
	}
}

// activatedMembers reads which members of a group hold their membership
// through a PIM for Groups activation (GET
// /identityGovernance/privilegedAccess/group/assignmentScheduleInstances?$filter=groupId eq 'ID',
// every page; accessId member, assignmentType activated): time-bound, not
// standing. A credential without PrivilegedAssignmentSchedule.Read.AzureADGroup
// is refused (403): the first refusal is the error, later groups are not
// asked again, and activated members then count as standing.
func (r *run) activatedMembers(ctx context.Context, id string) ([]string, map[string]*timestamppb.Timestamp, error) {
	r.mu.Lock()
	refused := r.noPIMActive
	r.mu.Unlock()
	if refused {
		return nil, nil, nil
	}
	filter := "groupId eq '" + strings.ReplaceAll(id, "'", "''") + "'"
	var out []string
	ends := map[string]*timestamppb.Timestamp{}
	next := ""
	for {
		var resp models.PrivilegedAccessGroupAssignmentScheduleInstanceCollectionResponseable
		err := r.call(ctx, func() (err error) {
			b := r.s.graph.IdentityGovernance().PrivilegedAccess().Group().AssignmentScheduleInstances()
			if next != "" {
				resp, err = b.WithUrl(next).Get(ctx, nil)
				return err
			}
			resp, err = b.Get(ctx, &identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetRequestConfiguration{
				QueryParameters: &identitygovernance.PrivilegedAccessGroupAssignmentScheduleInstancesRequestBuilderGetQueryParameters{Filter: &filter},
			})
			return err
		})
		if statusOf(err) == http.StatusForbidden {
			r.mu.Lock()
			first := !r.noPIMActive
			r.noPIMActive = true
			r.mu.Unlock()
			if first {
				return out, ends, fmt.Errorf("refused: the credential lacks PrivilegedAssignmentSchedule.Read.AzureADGroup, so PIM activations count as standing membership: %w", err)
			}
			return out, ends, nil
		}
		if err != nil {
			return out, ends, err
		}
		for _, a := range resp.GetValue() {
			if a.GetAccessId() == nil || *a.GetAccessId() != models.MEMBER_PRIVILEGEDACCESSGROUPRELATIONSHIPS ||
				a.GetAssignmentType() == nil || *a.GetAssignmentType() != models.ACTIVATED_PRIVILEGEDACCESSGROUPASSIGNMENTTYPE {
				continue
			}
			if p := deref(a.GetPrincipalId()); isGUID(p) && strings.EqualFold(deref(a.GetGroupId()), id) {
				out = append(out, lower(p))
				if end := a.GetEndDateTime(); end != nil && end.Before(maxTime) {
					ends[lower(p)] = timestamppb.New(*end)
				}
			}
		}
		if next = deref(resp.GetOdataNextLink()); next == "" {
			return out, ends, nil
		}
	}
}

// eligibleMembers reads the eligible members and eligible owners of a
// group under Privileged Identity Management for Groups (GET
// /identityGovernance/privilegedAccess/group/eligibilityScheduleInstances?$filter=groupId eq 'ID',
// every page; accessId member or owner). A credential without
// PrivilegedEligibilitySchedule.Read.AzureADGroup is refused (403): the
// first refusal is the error, later groups are not asked again.
func (r *run) eligibleMembers(ctx context.Context, id string) (members, owners []string, err error) {
	r.mu.Lock()
	refused := r.noPIM
	r.mu.Unlock()
	if refused {
		return nil, nil, nil
	}
	filter := "groupId eq '" + strings.ReplaceAll(id, "'", "''") + "'"
	next := ""
	for {
		var resp models.PrivilegedAccessGroupEligibilityScheduleInstanceCollectionResponseable
		err := r.call(ctx, func() (err error) {
			b := r.s.graph.IdentityGovernance().PrivilegedAccess().Group().EligibilityScheduleInstances()
			if next != "" {
				resp, err = b.WithUrl(next).Get(ctx, nil)
				return err
			}
			resp, err = b.Get(ctx, &identitygovernance.PrivilegedAccessGroupEligibilityScheduleInstancesRequestBuilderGetRequestConfiguration{
				QueryParameters: &identitygovernance.PrivilegedAccessGroupEligibilityScheduleInstancesRequestBuilderGetQueryParameters{Filter: &filter},
			})
			return err
		})
		if statusOf(err) == http.StatusForbidden {
			r.mu.Lock()
			first := !r.noPIM
			r.noPIM = true
			r.mu.Unlock()
			if first {
				return members, owners, fmt.Errorf("refused: the credential lacks PrivilegedEligibilitySchedule.Read.AzureADGroup, so eligible group members and owners are not listed: %w", err)
			}
			return members, owners, nil
		}
		if err != nil {
			return members, owners, err
		}
		for _, e := range resp.GetValue() {
			p := deref(e.GetPrincipalId())
			if e.GetAccessId() == nil || !isGUID(p) || !strings.EqualFold(deref(e.GetGroupId()), id) {
				continue
			}
			switch *e.GetAccessId() {
			case models.MEMBER_PRIVILEGEDACCESSGROUPRELATIONSHIPS:
				members = append(members, lower(p))
			case models.OWNER_PRIVILEGEDACCESSGROUPRELATIONSHIPS:
				if len(owners) < 1000 {
					owners = append(owners, lower(p))
				}
			}
		}
		if next = deref(resp.GetOdataNextLink()); next == "" {
			return members, owners, nil
		}
	}
}

// page reads every page of a group's members or owners.
func (r *run) page(ctx context.Context, id string, owners bool) ([]models.DirectoryObjectable, error) {
	var out []models.DirectoryObjectable
	next := ""
	for {
		var resp models.DirectoryObjectCollectionResponseable
		err := r.call(ctx, func() (err error) {
			switch {
			case owners && next == "":
				resp, err = r.s.graph.Groups().ByGroupId(id).Owners().Get(ctx, &groups.ItemOwnersRequestBuilderGetRequestConfiguration{
					QueryParameters: &groups.ItemOwnersRequestBuilderGetQueryParameters{Select: memberFields},
				})
			case owners:
				resp, err = r.s.graph.Groups().ByGroupId(id).Owners().WithUrl(next).Get(ctx, nil)
			case next == "":
				resp, err = r.s.graph.Groups().ByGroupId(id).Members().Get(ctx, &groups.ItemMembersRequestBuilderGetRequestConfiguration{
					QueryParameters: &groups.ItemMembersRequestBuilderGetQueryParameters{Select: memberFields, Top: ptr(int32(999))},
				})
			default:
				resp, err = r.s.graph.Groups().ByGroupId(id).Members().WithUrl(next).Get(ctx, nil)
			}
			return err
		})
		if err != nil {
			return out, err
		}
		out = append(out, resp.GetValue()...)
		next = deref(resp.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
	}
}

// signInBatch is how many users one signInActivity read names: Graph takes
// at most 15 values in the `in` of a filter on users.
const signInBatch = 15

// signIns reads the last sign-in of the users reached through groups (the
// members listing does not carry signInActivity), signInBatch users per
// request, unless the credential may not read it.
func (r *run) signIns(ctx context.Context) {
	r.mu.Lock()
	var ids []string
	if !r.noSignIn {
		for id, u := range r.users {
			if !r.signedIn[id] && u.GetLastSignIn() == nil && u.GetLastNonInteractiveSignIn() == nil && u.GetLastSuccessfulSignIn() == nil {
				ids = append(ids, id)
			}
		}
	}
	r.mu.Unlock()
	slices.Sort(ids)
	for batch := range slices.Chunk(ids, signInBatch) {
		r.spawn(func() {
			if err := r.lastSignIns(ctx, batch); err != nil {
				r.fail("signInActivity of users "+strings.Join(batch, ","), err)
			}
		})
	}
}

// lastSignIns reads the signInActivity of the users ids
// (GET /users?$filter=id in (…)&$select=id,signInActivity, every page) and
// sets their last sign-in. Refused (403: no AuditLog.Read.All), it leaves
// them unset and the run reads no more sign-ins.
func (r *run) lastSignIns(ctx context.Context, ids []string) error {
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = "'" + strings.ReplaceAll(id, "'", "''") + "'"
	}
	filter := "id in (" + strings.Join(quoted, ",") + ")"
	next := ""
	for {
		r.mu.Lock()
		refused := r.noSignIn
		r.mu.Unlock()
		if refused {
			return nil
		}
		var resp models.UserCollectionResponseable
		err := r.call(ctx, func() (err error) {
			if next != "" {
				resp, err = r.s.graph.Users().WithUrl(next).Get(ctx, nil)
				return err
			}
			resp, err = r.s.graph.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: signInFields},
			})
			return err
		})
		if statusOf(err) == http.StatusForbidden {
			r.mu.Lock()
			r.noSignIn = true
			r.mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		for _, u := range resp.GetValue() {
			if du, ok := r.users[lower(deref(u.GetId()))]; ok {
				setSignIns(du, u.GetSignInActivity())
			}
		}
		r.mu.Unlock()
		if next = deref(resp.GetOdataNextLink()); next == "" {
			return nil
		}
	}
}

// enrichApplications reads, for every service principal of an application,
// the application's secrets and certificates (counted) and federated
// identity credentials.
func (r *run) enrichApplications(ctx context.Context) {
	r.mu.Lock()
	var apps []*secureauditv1.DirectoryServicePrincipal
	for _, sp := range r.sps {
		if strings.EqualFold(sp.GetServicePrincipalType(), "Application") && sp.GetAppId() != "" {
			apps = append(apps, sp)
		}
	}
	r.mu.Unlock()
	for _, sp := range apps {
		r.spawn(func() {
			if err := r.application(ctx, sp); err != nil {
				r.fail("application "+sp.GetAppId(), err)
			}
		})
	}
}

func (r *run) application(ctx context.Context, sp *secureauditv1.DirectoryServicePrincipal) error {
	appID := sp.GetAppId()
	var app models.Applicationable
	err := r.call(ctx, func() (err error) {
		app, err = r.s.graph.ApplicationsWithAppId(&appID).Get(ctx, &applicationswithappid.ApplicationsWithAppIdRequestBuilderGetRequestConfiguration{
			QueryParameters: &applicationswithappid.ApplicationsWithAppIdRequestBuilderGetQueryParameters{Select: applicationKeys},
		})
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return nil // an application of another tenant
	}
	if err != nil {
		return err
	}
	var creds []*secureauditv1.FederatedCredential
	next := ""
	for {
		var resp models.FederatedIdentityCredentialCollectionResponseable
		err := r.call(ctx, func() (err error) {
			b := r.s.graph.Applications().ByApplicationId(deref(app.GetId())).FederatedIdentityCredentials()
			if next != "" {
				resp, err = b.WithUrl(next).Get(ctx, nil)
			} else {
				resp, err = b.Get(ctx, nil)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, fc := range resp.GetValue() {
			creds = append(creds, &secureauditv1.FederatedCredential{
				Name: clip(deref(fc.GetName()), 256), Issuer: clip(deref(fc.GetIssuer()), 1024), Subject: clip(deref(fc.GetSubject()), 1024),
			})
		}
		if next = deref(resp.GetOdataNextLink()); next == "" {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sp.PasswordCredentials += uint32(len(app.GetPasswordCredentials()))
	sp.CertificateCredentials += uint32(len(app.GetKeyCredentials()))
	sp.Credentials = capCredentials(append(sp.Credentials, credentials(app.GetPasswordCredentials(), app.GetKeyCredentials(), false)...))
	sp.FederatedCredentials = creds[:min(len(creds), 100)]
	return nil
}

func (r *run) addObject(o models.DirectoryObjectable) {
	switch v := o.(type) {
	case models.Userable:
		r.addUser(v)
	case models.ServicePrincipalable:
		r.addSP(v)
	}
}

func (r *run) addUser(u models.Userable) {
	du := &secureauditv1.DirectoryUser{
		Id:                lower(deref(u.GetId())),
		UserPrincipalName: deref(u.GetUserPrincipalName()),
		DisplayName:       clip(deref(u.GetDisplayName()), 256),
		AccountEnabled:    deref(u.GetAccountEnabled()),
	}
	switch strings.ToLower(deref(u.GetUserType())) {
	case "member":
		du.UserType = secureauditv1.UserType_USER_TYPE_MEMBER
	case "guest":
		du.UserType = secureauditv1.UserType_USER_TYPE_GUEST
	}
	setSignIns(du, u.GetSignInActivity())
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.users[du.GetId()]; ok {
		// A user read again (through a group) keeps the sign-ins read first.
		du.LastSignIn = cmpOr(old.GetLastSignIn(), du.GetLastSignIn())
		du.LastNonInteractiveSignIn = cmpOr(old.GetLastNonInteractiveSignIn(), du.GetLastNonInteractiveSignIn())
		du.LastSuccessfulSignIn = cmpOr(old.GetLastSuccessfulSignIn(), du.GetLastSuccessfulSignIn())
	}
	r.users[du.GetId()] = du
}

// setSignIns copies the three sign-in times Graph's signInActivity holds:
// interactive, non-interactive (kubelogin's token refreshes are these) and
// successful.
func setSignIns(du *secureauditv1.DirectoryUser, si models.SignInActivityable) {
	if si == nil {
		return
	}
	if t := si.GetLastSignInDateTime(); t != nil {
		du.LastSignIn = timestamppb.New(*t)
	}
	if t := si.GetLastNonInteractiveSignInDateTime(); t != nil {
		du.LastNonInteractiveSignIn = timestamppb.New(*t)
	}
	if t := si.GetLastSuccessfulSignInDateTime(); t != nil {
		du.LastSuccessfulSignIn = timestamppb.New(*t)
	}
}

// cmpOr returns a unless it is nil, else b.
func cmpOr(a, b *timestamppb.Timestamp) *timestamppb.Timestamp {
	if a != nil {
		return a
	}
	return b
}

func (r *run) addGroup(g models.Groupable) {
	id := lower(deref(g.GetId()))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.groups[id]; ok {
		return
	}
	r.groups[id] = &secureauditv1.DirectoryGroup{
		Id: id, DisplayName: clip(deref(g.GetDisplayName()), 256), Description: clip(deref(g.GetDescription()), 1024),
	}
}

func (r *run) addSP(sp models.ServicePrincipalable) {
	id := lower(deref(sp.GetId()))
	mi := identityOf(sp)
	r.mu.Lock()
	defer r.mu.Unlock()
	if mi != nil {
		r.identities[id] = mi
	}
	// A service principal read again keeps the read that saw more
	// credentials (a group's member listing selects none).
	if old, ok := r.sps[id]; ok && old.GetPasswordCredentials()+old.GetCertificateCredentials() >= uint32(len(sp.GetPasswordCredentials())+len(sp.GetKeyCredentials())) {
		return
	}
	r.sps[id] = &secureauditv1.DirectoryServicePrincipal{
		Id:                   id,
		AppId:                lower(deref(sp.GetAppId())),
		DisplayName:          clip(deref(sp.GetDisplayName()), 256),
		ServicePrincipalType: clip(deref(sp.GetServicePrincipalType()), 64),
		PasswordCredentials:  uint32(len(sp.GetPasswordCredentials())),
		// Only the count and the metadata: the keys themselves are never kept.
		CertificateCredentials: uint32(len(sp.GetKeyCredentials())),
		Credentials:            capCredentials(credentials(sp.GetPasswordCredentials(), sp.GetKeyCredentials(), true)),
	}
}

// maxCredentials is the contract's limit on a service principal's listed
// credentials.
const maxCredentials = 1000

// capCredentials keeps the first maxCredentials.
func capCredentials(cs []*secureauditv1.ApplicationCredential) []*secureauditv1.ApplicationCredential {
	return cs[:min(len(cs), maxCredentials)]
}

// credentials copies the metadata of client secrets and certificates:
// kind, keyId, displayName, startDateTime and endDateTime. It never reads a
// secret's secretText (Graph returns it only on creation) or hint (the
// first characters of the secret), nor a certificate's key.
func credentials(secrets []models.PasswordCredentialable, certs []models.KeyCredentialable, onSP bool) []*secureauditv1.ApplicationCredential {
	out := make([]*secureauditv1.ApplicationCredential, 0, len(secrets)+len(certs))
	for _, c := range secrets {
		out = append(out, credential(secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET, c.GetKeyId(), c.GetDisplayName(), c.GetStartDateTime(), c.GetEndDateTime(), onSP))
	}
	for _, c := range certs {
		out = append(out, credential(secureauditv1.CredentialKind_CREDENTIAL_KIND_CERTIFICATE, c.GetKeyId(), c.GetDisplayName(), c.GetStartDateTime(), c.GetEndDateTime(), onSP))
	}
	return out
}

func credential(kind secureauditv1.CredentialKind, keyID *uuid.UUID, name *string, start, end *time.Time, onSP bool) *secureauditv1.ApplicationCredential {
	c := &secureauditv1.ApplicationCredential{Kind: kind, DisplayName: clip(deref(name), 256), OnServicePrincipal: onSP}
	if keyID != nil {
		c.KeyId = keyID.String()
	}
	if start != nil && start.Before(maxStart) {
		c.Start = timestamppb.New(*start)
	}
	if end != nil {
		c.End = timestamppb.New(*end)
	}
	return c
}

// maxStart is the contract's bound on a credential's start (2200-01-01).
var maxStart = time.Unix(7258118400, 0)

// result sorts what the run found into a directory.Result.
func (r *run) result() *directory.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &directory.Result{
		Users:             sortedValues(r.users),
		Groups:            sortedValues(r.groups),
		ServicePrincipals: sortedValues(r.sps),
		Errors:            r.errs,
		RoleAssignments:   r.assigned,
		Cluster:           r.cluster,
		DenyAssignments:   r.denies,
	}
	slices.SortFunc(res.DenyAssignments, func(a, b *secureauditv1.AzureDenyAssignment) int {
		return cmp.Compare(lower(a.GetId()), lower(b.GetId()))
	})
	for _, sp := range res.ServicePrincipals {
		directory.SortCredentials(sp.Credentials)
	}
	for _, g := range res.Groups {
		slices.Sort(g.MemberIds)
		g.MemberIds = slices.Compact(g.MemberIds)
		slices.Sort(g.OwnerIds)
		g.OwnerIds = slices.Compact(g.OwnerIds)
		slices.Sort(g.EligibleMemberIds)
		g.EligibleMemberIds = slices.Compact(g.EligibleMemberIds)
		slices.Sort(g.ActivatedMemberIds)
		g.ActivatedMemberIds = slices.Compact(g.ActivatedMemberIds)
		slices.Sort(g.EligibleOwnerIds)
		g.EligibleOwnerIds = slices.Compact(g.EligibleOwnerIds)
	}
	for _, p := range r.unresolved {
		res.Unresolved = append(res.Unresolved, p)
	}
	slices.SortFunc(res.Unresolved, func(a, b *secureauditv1.Principal) int {
		return cmp.Or(cmp.Compare(a.GetKind(), b.GetKind()), cmp.Compare(a.GetName(), b.GetName()))
	})
	slices.SortFunc(res.Errors, func(a, b *secureauditv1.LookupError) int { return cmp.Compare(a.GetLookup(), b.GetLookup()) })
	slices.SortFunc(res.RoleAssignments, func(a, b *secureauditv1.AzureRoleAssignment) int {
		return cmp.Compare(lower(a.GetId()), lower(b.GetId()))
	})
	return res
}

func sortedValues[T any](m map[string]T) []T {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func lower(s string) string { return strings.ToLower(s) }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func ptr[T any](v T) *T { return &v }

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
