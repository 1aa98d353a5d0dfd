// Package tenanttest is a fake Entra tenant for tests: the token endpoint
// (OpenID discovery and client-credential tokens carrying Graph application
// roles), the part of Microsoft Graph the tenant source reads (users,
// groups with paged members and owners, service principals, applications
// and their federated credentials) and the part of Azure Resource Manager it
// reads (the AKS managed cluster, role assignments at, above and below a
// scope, role definitions with actions and data actions, user-assigned
// managed identities and their federated credentials, deny assignments at,
// above and below a scope), all served over
// HTTPS on loopback from a DirectorySnapshot, with Privileged Identity
// Management's eligible role assignments (roleEligibilityScheduleInstances:
// the snapshot's assignments marked eligible, which the role assignment
// listing leaves out), the schedule instances of the active ones
// (Activated for those marked activated) and PIM for Groups' eligible
// members and owners and activations (the groups' eligible_member_ids,
// eligible_owner_ids, activated_member_ids and activation_ends). Graph answers only the
// properties a request's $select names, and refuses signInActivity (403)
// unless the token carries AuditLog.Read.All. It can throttle (429 with
// Retry-After) or fail requests by path, and counts the requests it served.
package tenanttest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// Token is the access token the fake issues; Graph and ARM requests
// without it as a bearer token get 401.
const tokenSignature = "fake-signature"

// RoleDefinitionIDs maps the Azure built-in role names the fake knows to
// their definition GUIDs.
var RoleDefinitionIDs = map[string]string{
	"Owner":                     "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
	"Contributor":               "b24988ac-6180-42a0-ab88-20f7382dd24c",
	"Reader":                    "acdd72a7-3385-48ef-bd42-f606fba81ae7",
	"User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
	"Azure Kubernetes Service Cluster Admin Role": "0ab0b1a8-8aac-4efd-b8c2-3ee1fb270be8",
	"Azure Kubernetes Service Cluster User Role":  "4abbcc35-e782-43d8-92c5-2d3f1bd2253f",
	"Azure Kubernetes Service RBAC Cluster Admin": "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b",
	"Azure Kubernetes Service RBAC Reader":        "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
	"Azure Kubernetes Service RBAC Writer":        "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb",
	"Azure Kubernetes Service RBAC Admin":         "3498e952-d568-435e-9b2c-8d77e338d7f7",
	"Azure Kubernetes Service Contributor Role":   "ed7f3fbd-7b88-4dd4-9017-9adb7ce333f8",
}

// Server is the fake tenant.
type Server struct {
	// URL is the server's base, https://127.0.0.1:<port>.
	URL string
	// Client trusts the server's certificate.
	Client *http.Client
	// TenantID is the snapshot's tenant.
	TenantID string
	// AgentID is the object ID of the agent's own service principal, the
	// oid claim of the tokens the fake issues.
	AgentID string

	srv      *httptest.Server
	mu       sync.Mutex
	roles    []string
	pageSize int
	throttle map[string]int // path prefix -> 429s left
	fail     map[string]int // path prefix -> status to answer
	requests map[string]int // path -> count
	tokens   int

	users  map[string]*secureauditv1.DirectoryUser // by lower ID and lower UPN
	groups map[string]*secureauditv1.DirectoryGroup
	sps    map[string]*secureauditv1.DirectoryServicePrincipal
	apps   map[string]*secureauditv1.DirectoryServicePrincipal // by lower app ID and "app-"+ID
	msis   map[string]*secureauditv1.DirectoryServicePrincipal // by lower ARM resource ID
	snap   *secureauditv1.DirectorySnapshot
}

// New starts a fake tenant serving snap, closed when the test ends. Its
// tokens carry the Graph application roles given (none by default).
//
// A service principal with a resource_id is a user-assigned managed
// identity: Graph lists the resource ID among its alternativeNames, and ARM
// serves the identity (its principalId the service principal's ID) with the
// service principal's federated_credentials. When two service principals
// name the same resource ID, ARM serves the later one's: the identity was
// deleted and created again under the same name while Graph still lists
// the old service principal.
func New(t testing.TB, snap *secureauditv1.DirectorySnapshot, roles ...string) *Server {
	t.Helper()
	s := &Server{
		TenantID: snap.GetTenantId(),
		AgentID:  "a9e4c1d2-7b35-4f08-9c6e-2d1f0b8a7e53",
		roles:    roles,
		pageSize: 100,
		throttle: map[string]int{},
		fail:     map[string]int{},
		requests: map[string]int{},
		users:    map[string]*secureauditv1.DirectoryUser{},
		groups:   map[string]*secureauditv1.DirectoryGroup{},
		sps:      map[string]*secureauditv1.DirectoryServicePrincipal{},
		apps:     map[string]*secureauditv1.DirectoryServicePrincipal{},
		msis:     map[string]*secureauditv1.DirectoryServicePrincipal{},
		snap:     snap,
	}
	for _, u := range snap.GetUsers() {
		s.users[strings.ToLower(u.GetId())] = u
		s.users[strings.ToLower(u.GetUserPrincipalName())] = u
	}
	for _, g := range snap.GetGroups() {
		s.groups[strings.ToLower(g.GetId())] = g
	}
	for _, sp := range snap.GetServicePrincipals() {
		s.sps[strings.ToLower(sp.GetId())] = sp
		s.apps[strings.ToLower(sp.GetAppId())] = sp
		s.apps["app-"+strings.ToLower(sp.GetId())] = sp
		if sp.GetResourceId() != "" {
			s.msis[strings.ToLower(sp.GetResourceId())] = sp
		}
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Client = s.srv.Client()
	return s
}

// CertPEM returns the server's TLS certificate in PEM, for a process that
// must trust it (SSL_CERT_FILE).
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// SetPageSize sets how many objects one page holds: members, owners and
// users in Graph, federated credentials of a managed identity in ARM.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Throttle answers the next n requests whose path starts with prefix with
// 429 and Retry-After: 1.
func (s *Server) Throttle(prefix string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle[prefix] = n
}

// DeleteIdentity removes the user-assigned managed identity with the given
// ARM resource ID from ARM only: Graph still lists its service principal,
// as it does for a while after the identity is deleted.
func (s *Server) DeleteIdentity(resourceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msis, strings.ToLower(resourceID))
}

// Fail answers every request whose path starts with prefix with status.
func (s *Server) Fail(prefix string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[prefix] = status
}

// Requests returns how many requests with a path starting with prefix were
// served (throttled and failed ones included).
func (s *Server) Requests(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.requests {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// GraphURL is the Graph base the tenant source is configured with.
func (s *Server) GraphURL() string { return s.URL + "/v1.0" }

// AuthorityHost is the Entra authority azidentity is configured with.
func (s *Server) AuthorityHost() string { return s.URL + "/" }

// Token returns an access token as the fake issues them.
func (s *Server) Token() string {
	s.mu.Lock()
	roles := s.roles
	s.mu.Unlock()
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"tid": s.TenantID, "oid": s.AgentID, "roles": roles})
	return header + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString([]byte(tokenSignature))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	s.mu.Lock()
	s.requests[path]++
	status, throttled := 0, false
	for p, n := range s.throttle {
		if strings.HasPrefix(path, p) && n > 0 {
			s.throttle[p] = n - 1
			throttled = true
		}
	}
	for p, st := range s.fail {
		if strings.HasPrefix(path, p) {
			status = st
		}
	}
	s.mu.Unlock()
	switch {
	case strings.HasSuffix(path, "/.well-known/openid-configuration"):
		s.discovery(w)
		return
	case strings.HasSuffix(path, "/oauth2/v2.0/token"):
		s.token(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token() {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "no or wrong bearer token")
		return
	}
	if throttled {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "TooManyRequests", "throttled")
		return
	}
	if status != 0 {
		writeError(w, status, "Failure", "injected failure")
		return
	}
	switch {
	case strings.HasPrefix(path, "/v1.0/"):
		s.graph(w, r, strings.TrimPrefix(path, "/v1.0/"))
	case strings.HasPrefix(path, "/subscriptions/"):
		s.arm(w, r, path)
	default:
		writeError(w, http.StatusNotFound, "NotFound", path)
	}
}

func (s *Server) discovery(w http.ResponseWriter) {
	base := s.URL + "/" + s.TenantID
	writeJSON(w, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_types_supported":              []string{"code", "id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	s.mu.Lock()
	s.tokens++
	s.mu.Unlock()
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": s.Token()})
}

// graph serves the Graph paths the tenant source reads.
func (s *Server) graph(w http.ResponseWriter, r *http.Request, path string) {
	parts := strings.Split(path, "/")
	sel := selected(r)
	if sel["signInActivity"] && !s.hasRole("AuditLog.Read.All") {
		writeError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	switch {
	case len(parts) == 1 && parts[0] == "users":
		s.usersIn(w, r, sel)
	case len(parts) == 2 && parts[0] == "users":
		u, ok := s.users[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "user "+parts[1])
			return
		}
		writeJSON(w, sel.pick(s.user(u, sel["signInActivity"])))
	case len(parts) >= 2 && parts[0] == "groups":
		g, ok := s.groups[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "group "+parts[1])
			return
		}
		switch {
		case len(parts) == 2:
			writeJSON(w, sel.pick(s.group(g)))
		case len(parts) == 3 && (parts[2] == "members" || parts[2] == "owners"):
			ids := g.GetMemberIds()
			if parts[2] == "owners" {
				ids = g.GetOwnerIds()
			}
			s.page(w, r, ids, sel)
		default:
			writeError(w, http.StatusNotFound, "NotFound", path)
		}
	case len(parts) == 2 && parts[0] == "servicePrincipals":
		sp, ok := s.sps[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "service principal "+parts[1])
			return
		}
		writeJSON(w, sel.pick(s.servicePrincipal(sp)))
	case len(parts) == 1 && strings.HasPrefix(parts[0], "servicePrincipals(appId="):
		sp, ok := s.apps[appKey(parts[0])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", parts[0])
			return
		}
		writeJSON(w, sel.pick(s.servicePrincipal(sp)))
	case len(parts) == 1 && strings.HasPrefix(parts[0], "applications(appId="):
		sp, ok := s.apps[appKey(parts[0])]
		if !ok || sp.GetServicePrincipalType() != "Application" {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", parts[0])
			return
		}
		secrets, certs := graphCredentials(sp, false)
		writeJSON(w, sel.pick(map[string]any{"id": "app-" + strings.ToLower(sp.GetId()), "passwordCredentials": secrets, "keyCredentials": certs}))
	case path == "identityGovernance/privilegedAccess/group/eligibilityScheduleInstances":
		s.groupEligibilities(w, r)
	case path == "identityGovernance/privilegedAccess/group/assignmentScheduleInstances":
		s.groupActivations(w, r)
	case len(parts) == 3 && parts[0] == "applications" && parts[2] == "federatedIdentityCredentials":
		sp, ok := s.apps[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", parts[1])
			return
		}
		creds := []map[string]any{}
		for _, fc := range sp.GetFederatedCredentials() {
			creds = append(creds, map[string]any{"name": fc.GetName(), "issuer": fc.GetIssuer(), "subject": fc.GetSubject(), "audiences": []string{"api://AzureADTokenExchange"}})
		}
		writeJSON(w, map[string]any{"value": creds})
	default:
		writeError(w, http.StatusNotFound, "NotFound", path)
	}
}

// groupEligibilities serves PIM for Groups' eligibility schedule
// instances of one group ($filter=groupId eq 'ID', which Graph requires,
// or principalId eq 'ID'): the group's eligible_member_ids as members. Like
// Graph it refuses a token without
// PrivilegedEligibilitySchedule.Read.AzureADGroup (or its ReadWrite) with
// 403, and a listing without either filter with 400.
func (s *Server) groupEligibilities(w http.ResponseWriter, r *http.Request) {
	if !s.hasRole("PrivilegedEligibilitySchedule.Read.AzureADGroup") && !s.hasRole("PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup") {
		writeError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	filter := r.URL.Query().Get("$filter")
	groupID, byGroup := strings.CutPrefix(filter, "groupId eq '")
	principalID, byPrincipal := strings.CutPrefix(filter, "principalId eq '")
	if !byGroup && !byPrincipal {
		writeError(w, http.StatusBadRequest, "BadRequest", "Filter on groupId or principalId is required.")
		return
	}
	groupID, principalID = strings.TrimSuffix(groupID, "'"), strings.TrimSuffix(principalID, "'")
	values := []map[string]any{}
	for _, g := range s.snap.GetGroups() {
		if byGroup && !strings.EqualFold(g.GetId(), groupID) {
			continue
		}
		for access, ids := range map[string][]string{"member": g.GetEligibleMemberIds(), "owner": g.GetEligibleOwnerIds()} {
			for _, m := range ids {
				if byPrincipal && !strings.EqualFold(m, principalID) {
					continue
				}
				values = append(values, map[string]any{
					"id": g.GetId() + "_" + access + "_" + m, "groupId": g.GetId(), "principalId": m, "accessId": access,
					"memberType": "direct", "eligibilityScheduleId": g.GetId() + "_" + access + "_" + m,
					"startDateTime": "2026-01-01T00:00:00Z",
				})
			}
		}
	}
	writeJSON(w, map[string]any{"value": values})
}

// groupActivations serves PIM for Groups' assignment schedule instances
// of one group ($filter=groupId eq 'ID'): the group's
// activated_member_ids as activated memberships. It refuses a token
// without PrivilegedAssignmentSchedule.Read.AzureADGroup (or its
// ReadWrite) with 403, and a listing without the filter with 400.
func (s *Server) groupActivations(w http.ResponseWriter, r *http.Request) {
	if !s.hasRole("PrivilegedAssignmentSchedule.Read.AzureADGroup") && !s.hasRole("PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup") {
		writeError(w, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return
	}
	groupID, ok := strings.CutPrefix(r.URL.Query().Get("$filter"), "groupId eq '")
	if !ok {
		writeError(w, http.StatusBadRequest, "BadRequest", "Filter on groupId or principalId is required.")
		return
	}
	groupID = strings.TrimSuffix(groupID, "'")
	values := []map[string]any{}
	for _, g := range s.snap.GetGroups() {
		if !strings.EqualFold(g.GetId(), groupID) {
			continue
		}
		for _, m := range g.GetActivatedMemberIds() {
			v := map[string]any{
				"id": g.GetId() + "_member_" + m + "_activated", "groupId": g.GetId(), "principalId": m, "accessId": "member",
				"assignmentType": "activated", "memberType": "direct", "startDateTime": "2026-12-07T08:00:00Z",
			}
			// The activation's end, when the snapshot gives one.
			if end := g.GetActivationEnds()[m]; end != nil {
				v["endDateTime"] = end.AsTime().Format(time.RFC3339)
			}
			values = append(values, v)
		}
	}
	writeJSON(w, map[string]any{"value": values})
}

func appKey(seg string) string {
	_, v, _ := strings.Cut(seg, "=")
	return strings.ToLower(strings.Trim(strings.TrimSuffix(v, ")"), "'"))
}

// maxIn is the most values Graph takes in the `in` of a filter on users.
const maxIn = 15

// usersIn serves GET /users?$filter=id in ('…',…): the users among the IDs
// named, in pages, @odata.nextLink pointing at the next one. Like Graph it
// refuses more than maxIn values (400); unlike Graph it refuses any other
// listing of users, which the tenant source must never ask for.
func (s *Server) usersIn(w http.ResponseWriter, r *http.Request, sel selection) {
	ids, ok := idsIn(r.URL.Query().Get("$filter"))
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "the fake lists users only with $filter=id in ('…')")
		return
	case len(ids) > maxIn:
		writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery",
			fmt.Sprintf("Too many child clauses specified in search filter expression containing 'OR' operators: %d. Max allowed: %d.", len(ids), maxIn))
		return
	}
	var found []*secureauditv1.DirectoryUser
	for _, id := range ids {
		if u, ok := s.users[strings.ToLower(id)]; ok && strings.EqualFold(u.GetId(), id) {
			found = append(found, u)
		}
	}
	s.mu.Lock()
	size := s.pageSize
	s.mu.Unlock()
	start, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	start = min(max(start, 0), len(found))
	end := min(start+size, len(found))
	values := []map[string]any{}
	for _, u := range found[start:end] {
		values = append(values, sel.pick(s.user(u, sel["signInActivity"])))
	}
	body := map[string]any{"value": values}
	if end < len(found) {
		body["@odata.nextLink"] = s.next(r, end)
	}
	writeJSON(w, body)
}

// idsIn parses "id in ('a', 'b')".
func idsIn(filter string) ([]string, bool) {
	list, ok := strings.CutPrefix(strings.TrimSpace(filter), "id in (")
	if !ok {
		return nil, false
	}
	if list, ok = strings.CutSuffix(list, ")"); !ok {
		return nil, false
	}
	var ids []string
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' {
			return nil, false
		}
		ids = append(ids, strings.ReplaceAll(v[1:len(v)-1], "''", "'"))
	}
	return ids, true
}

func (s *Server) hasRole(role string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.roles, role)
}

// page serves one page of directory objects, @odata.nextLink pointing at
// the next one (the same query, $select included, with a $skiptoken).
func (s *Server) page(w http.ResponseWriter, r *http.Request, ids []string, sel selection) {
	s.mu.Lock()
	size := s.pageSize
	s.mu.Unlock()
	start, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	end := min(start+size, len(ids))
	values := []map[string]any{}
	for _, id := range ids[min(start, len(ids)):end] {
		if o := s.object(id); o != nil {
			values = append(values, sel.pick(o))
		}
	}
	body := map[string]any{"value": values}
	if end < len(ids) {
		body["@odata.nextLink"] = s.next(r, end)
	}
	writeJSON(w, body)
}

// next is the link to the page of r's listing that starts at start.
func (s *Server) next(r *http.Request, start int) string {
	q := r.URL.Query()
	q.Set("$skiptoken", strconv.Itoa(start))
	return s.URL + r.URL.Path + "?" + q.Encode()
}

// selection is the set of properties a Graph request's $select names; nil
// selects every property.
type selection map[string]bool

func selected(r *http.Request) selection {
	v := r.URL.Query().Get("$select")
	if v == "" {
		return nil
	}
	sel := selection{}
	for _, f := range strings.Split(v, ",") {
		sel[strings.TrimSpace(f)] = true
	}
	return sel
}

// pick keeps the selected properties of an object, and its @odata.type.
func (sel selection) pick(o map[string]any) map[string]any {
	if sel == nil {
		return o
	}
	out := map[string]any{}
	for k, v := range o {
		if sel[k] || k == "@odata.type" {
			out[k] = v
		}
	}
	return out
}

func (s *Server) object(id string) map[string]any {
	k := strings.ToLower(id)
	if u, ok := s.users[k]; ok {
		return s.user(u, false)
	}
	if g, ok := s.groups[k]; ok {
		return s.group(g)
	}
	if sp, ok := s.sps[k]; ok {
		return s.servicePrincipal(sp)
	}
	return nil // deleted since: Graph leaves it out
}

func (s *Server) user(u *secureauditv1.DirectoryUser, signIn bool) map[string]any {
	m := map[string]any{
		"@odata.type":       "#microsoft.graph.user",
		"id":                u.GetId(),
		"userPrincipalName": u.GetUserPrincipalName(),
		"displayName":       u.GetDisplayName(),
		"accountEnabled":    u.GetAccountEnabled(),
	}
	switch u.GetUserType() {
	case secureauditv1.UserType_USER_TYPE_MEMBER:
		m["userType"] = "Member"
	case secureauditv1.UserType_USER_TYPE_GUEST:
		m["userType"] = "Guest"
	}
	if signIn {
		// All three of Graph's signInActivity times, each when known.
		si := map[string]any{}
		for k, ts := range map[string]interface{ AsTime() time.Time }{
			"lastSignInDateTime":               u.GetLastSignIn(),
			"lastNonInteractiveSignInDateTime": u.GetLastNonInteractiveSignIn(),
			"lastSuccessfulSignInDateTime":     u.GetLastSuccessfulSignIn(),
		} {
			if t, ok := ts.(*timestamppb.Timestamp); ok && t != nil {
				si[k] = t.AsTime().Format("2006-01-02T15:04:05Z")
			}
		}
		if len(si) > 0 {
			m["signInActivity"] = si
		}
	}
	return m
}

func (s *Server) group(g *secureauditv1.DirectoryGroup) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.group", "id": g.GetId(), "displayName": g.GetDisplayName(), "description": g.GetDescription()}
}

func (s *Server) servicePrincipal(sp *secureauditv1.DirectoryServicePrincipal) map[string]any {
	secrets, certs := graphCredentials(sp, true)
	names := []string{}
	if id := sp.GetResourceId(); id != "" {
		names = append(names, "isExplicit=True", graphResourceID(id))
	}
	return map[string]any{
		"@odata.type": "#microsoft.graph.servicePrincipal", "id": sp.GetId(), "appId": sp.GetAppId(),
		"displayName": sp.GetDisplayName(), "servicePrincipalType": sp.GetServicePrincipalType(), "passwordCredentials": secrets, "keyCredentials": certs,
		"alternativeNames": names,
	}
}

// Hint is the hint the fake gives every client secret, as Graph does (the
// first characters of the secret): the tenant source must not keep it.
const Hint = "Qx7"

// graphCredentials lists, as Graph does, the client secrets and
// certificates of the service principal (onSP) or of its application: the
// snapshot's listed credentials, then, on the application, undated ones
// up to password_credentials and certificate_credentials. Secrets carry a
// hint and a null secretText; certificates their metadata and no key.
func graphCredentials(sp *secureauditv1.DirectoryServicePrincipal, onSP bool) (secrets, certs []map[string]any) {
	secrets, certs = []map[string]any{}, []map[string]any{}
	var nSecrets, nCerts uint32
	for _, c := range sp.GetCredentials() {
		isSecret := c.GetKind() == secureauditv1.CredentialKind_CREDENTIAL_KIND_SECRET
		if isSecret {
			nSecrets++
		} else {
			nCerts++
		}
		if c.GetOnServicePrincipal() != onSP {
			continue
		}
		m := map[string]any{"keyId": c.GetKeyId(), "displayName": c.GetDisplayName()}
		for k, t := range map[string]*timestamppb.Timestamp{"startDateTime": c.GetStart(), "endDateTime": c.GetEnd()} {
			if t != nil {
				m[k] = t.AsTime().Format(time.RFC3339Nano)
			}
		}
		if isSecret {
			m["hint"], m["secretText"] = Hint, nil
			secrets = append(secrets, m)
		} else {
			m["type"], m["usage"] = "AsymmetricX509Cert", "Verify"
			certs = append(certs, m)
		}
	}
	if onSP {
		return secrets, certs
	}
	for i := nSecrets; i < sp.GetPasswordCredentials(); i++ {
		secrets = append(secrets, map[string]any{"keyId": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "displayName": "secret", "hint": Hint, "secretText": nil})
	}
	for i := nCerts; i < sp.GetCertificateCredentials(); i++ {
		certs = append(certs, map[string]any{"keyId": fmt.Sprintf("00000000-0000-4000-9000-%012d", i), "displayName": "CN=pipeline", "type": "AsymmetricX509Cert", "usage": "Verify"})
	}
	return secrets, certs
}

// graphResourceID writes an ARM resource ID as Graph lists it among a
// managed identity's alternativeNames: "resourcegroups" in lower case.
func graphResourceID(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		if strings.EqualFold(p, "resourceGroups") {
			parts[i] = "resourcegroups"
		}
	}
	return strings.Join(parts, "/")
}

// arm serves the snapshot's AKS managed cluster, role assignments at a
// scope (atScope(): the scope and its ancestors; without a filter also
// those below it, such as the cluster's namespaces), role definitions by
// ID with their permissions (the assignment's, else the built-in role's of
// directory.BuiltinRoles), and user-assigned managed identities with their
// federated credentials. Like ARM it refuses a request without
// an api-version.
func (s *Server) arm(w http.ResponseWriter, r *http.Request, path string) {
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	lp := strings.ToLower(path)
	switch {
	case strings.Contains(lp, "/providers/microsoft.managedidentity/userassignedidentities/"):
		s.identity(w, r, lp)
	case s.snap.GetAksCluster() != nil && lp == strings.ToLower(s.snap.GetAksCluster().GetId()):
		writeJSON(w, managedCluster(s.snap.GetAksCluster()))
	case strings.HasSuffix(lp, "/providers/microsoft.authorization/roleassignments"):
		s.listAt(w, r, path, "/providers/microsoft.authorization/roleassignments", func(a *secureauditv1.AzureRoleAssignment) map[string]any {
			if a.GetEligible() {
				return nil // an eligibility is no role assignment until activated
			}
			return map[string]any{
				"id": a.GetId(), "type": "Microsoft.Authorization/roleAssignments",
				"properties": map[string]any{
					"principalId": a.GetPrincipalId(), "principalType": a.GetPrincipalType(), "scope": a.GetScope(),
					"roleDefinitionId": definitionID(a),
				},
			}
		})
	case strings.HasSuffix(lp, "/providers/microsoft.authorization/roleeligibilityscheduleinstances"):
		// PIM's eligible assignments: the snapshot's eligible ones, current
		// (Provisioned), with their end when they have one.
		s.listAt(w, r, path, "/providers/microsoft.authorization/roleeligibilityscheduleinstances", func(a *secureauditv1.AzureRoleAssignment) map[string]any {
			if !a.GetEligible() {
				return nil
			}
			props := map[string]any{
				"principalId": a.GetPrincipalId(), "principalType": a.GetPrincipalType(), "scope": a.GetScope(),
				"roleDefinitionId": definitionID(a), "status": "Provisioned", "memberType": "Direct",
				"startDateTime": "2026-01-01T00:00:00Z", "roleEligibilityScheduleId": a.GetId(),
			}
			if t := a.GetEligibleUntil(); t != nil {
				props["endDateTime"] = t.AsTime().Format(time.RFC3339)
			}
			return map[string]any{"id": a.GetId(), "name": a.GetId()[strings.LastIndex(a.GetId(), "/")+1:], "type": "Microsoft.Authorization/roleEligibilityScheduleInstances", "properties": props}
		})
	case strings.HasSuffix(lp, "/providers/microsoft.authorization/roleassignmentscheduleinstances"):
		// The schedule of every active assignment: Activated for a PIM
		// activation, Assigned for a standing one.
		s.listAt(w, r, path, "/providers/microsoft.authorization/roleassignmentscheduleinstances", func(a *secureauditv1.AzureRoleAssignment) map[string]any {
			if a.GetEligible() {
				return nil
			}
			typ := "Assigned"
			if a.GetActivated() {
				typ = "Activated"
			}
			return map[string]any{
				"id": a.GetId() + "-schedule-instance", "type": "Microsoft.Authorization/roleAssignmentScheduleInstances",
				"properties": map[string]any{
					"principalId": a.GetPrincipalId(), "principalType": a.GetPrincipalType(), "scope": a.GetScope(),
					"roleDefinitionId": definitionID(a), "status": "Provisioned", "assignmentType": typ, "memberType": "Direct",
					"originRoleAssignmentId": a.GetId(),
				},
			}
		})
	case strings.HasSuffix(lp, "/providers/microsoft.authorization/denyassignments"):
		s.denyAssignments(w, r, path[:len(path)-len("/providers/microsoft.authorization/denyassignments")])
	case strings.Contains(lp, "/providers/microsoft.authorization/roledefinitions/"):
		for _, a := range s.snap.GetRoleAssignments() {
			if !strings.EqualFold(definitionID(a), path) {
				continue
			}
			perms := []map[string]any{}
			for _, p := range directory.Permissions(a) {
				perms = append(perms, map[string]any{
					"actions": orEmpty(p.GetActions()), "notActions": orEmpty(p.GetNotActions()),
					"dataActions": orEmpty(p.GetDataActions()), "notDataActions": orEmpty(p.GetNotDataActions()),
				})
			}
			typ := "BuiltInRole"
			if a.GetCustomRole() {
				typ = "CustomRole"
			}
			writeJSON(w, map[string]any{"id": path, "name": path[strings.LastIndex(path, "/")+1:], "type": "Microsoft.Authorization/roleDefinitions",
				"properties": map[string]any{"roleName": a.GetRoleName(), "type": typ, "permissions": perms}})
			return
		}
		writeError(w, http.StatusNotFound, "RoleDefinitionDoesNotExist", path)
	default:
		writeError(w, http.StatusNotFound, "NotFound", path)
	}
}

// listAt serves a listing of the snapshot's role assignments at a scope
// (the path less suffix), as ARM lists role assignments and PIM's schedule
// instances: with atScope() the scope and its ancestors; without a filter
// below it too; with assignedTo('ID') (or principalId eq 'ID') only the
// principal's. item renders an assignment, nil to leave it out.
func (s *Server) listAt(w http.ResponseWriter, r *http.Request, path, suffix string, item func(*secureauditv1.AzureRoleAssignment) map[string]any) {
	scope := strings.ToLower(strings.TrimSuffix(path[:len(path)-len(suffix)], "/"))
	filter := r.URL.Query().Get("$filter")
	below := filter != "atScope()"
	principal := ""
	if p, ok := strings.CutPrefix(filter, "assignedTo('"); ok {
		principal = strings.TrimSuffix(p, "')")
	} else if p, ok := strings.CutPrefix(filter, "principalId eq '"); ok {
		principal = strings.TrimSuffix(p, "'")
	}
	values := []map[string]any{}
	for _, a := range s.snap.GetRoleAssignments() {
		as := strings.ToLower(strings.TrimSuffix(a.GetScope(), "/"))
		if scope != as && !strings.HasPrefix(scope, as+"/") && !(below && strings.HasPrefix(as, scope+"/")) {
			continue
		}
		if principal != "" && !strings.EqualFold(a.GetPrincipalId(), principal) {
			continue
		}
		if v := item(a); v != nil {
			values = append(values, v)
		}
	}
	slices.SortFunc(values, func(a, b map[string]any) int { return cmp.Compare(a["id"].(string), b["id"].(string)) })
	writeJSON(w, map[string]any{"value": values})
}

// denyAssignments serves the snapshot's deny assignments at a scope as ARM
// lists them: with atScope() those at the scope and above it, without a
// filter those below it too. Principals carry the type ARM gives them:
// SystemDefined for Everyone (the all-zero ID), else Group, User or
// ServicePrincipal as the snapshot holds the object.
func (s *Server) denyAssignments(w http.ResponseWriter, r *http.Request, at string) {
	scope := strings.ToLower(strings.TrimSuffix(at, "/"))
	below := r.URL.Query().Get("$filter") != "atScope()"
	principals := func(ids []string) []map[string]any {
		out := []map[string]any{}
		for _, id := range ids {
			typ := "User"
			switch {
			case id == "00000000-0000-0000-0000-000000000000":
				typ = "SystemDefined"
			case s.groups[strings.ToLower(id)] != nil:
				typ = "Group"
			case s.sps[strings.ToLower(id)] != nil:
				typ = "ServicePrincipal"
			}
			out = append(out, map[string]any{"id": id, "type": typ})
		}
		return out
	}
	values := []map[string]any{}
	for _, d := range s.snap.GetDenyAssignments() {
		ds := strings.ToLower(strings.TrimSuffix(d.GetScope(), "/"))
		if scope != ds && !strings.HasPrefix(scope, ds+"/") && !(below && strings.HasPrefix(ds, scope+"/")) {
			continue
		}
		perms := []map[string]any{}
		for _, p := range d.GetPermissions() {
			perms = append(perms, map[string]any{
				"actions": orEmpty(p.GetActions()), "notActions": orEmpty(p.GetNotActions()),
				"dataActions": orEmpty(p.GetDataActions()), "notDataActions": orEmpty(p.GetNotDataActions()),
			})
		}
		values = append(values, map[string]any{
			"id": d.GetId(), "name": d.GetId()[strings.LastIndex(d.GetId(), "/")+1:], "type": "Microsoft.Authorization/denyAssignments",
			"properties": map[string]any{
				"denyAssignmentName": d.GetName(), "scope": d.GetScope(), "permissions": perms,
				"principals": principals(d.GetPrincipalIds()), "excludePrincipals": principals(d.GetExcludePrincipalIds()),
				"doNotApplyToChildScopes": d.GetDoesNotApplyToChildScopes(), "isSystemProtected": true,
			},
		})
	}
	slices.SortFunc(values, func(a, b map[string]any) int { return cmp.Compare(a["id"].(string), b["id"].(string)) })
	writeJSON(w, map[string]any{"value": values})
}

// definitionID is the role definition ID the fake gives an assignment's
// role: the one it carries, the built-in role's, or one made from the role
// name (so that every assignment of a role shares it).
func definitionID(a *secureauditv1.AzureRoleAssignment) string {
	if id := a.GetRoleDefinitionId(); id != "" {
		return id
	}
	sub := strings.Split(strings.Trim(a.GetScope(), "/"), "/")
	subID := "00000000-0000-0000-0000-000000000000"
	if len(sub) > 1 && strings.EqualFold(sub[0], "subscriptions") {
		subID = sub[1]
	}
	def, ok := RoleDefinitionIDs[a.GetRoleName()]
	if !ok {
		def = fmt.Sprintf("00000000-0000-4000-8000-%012x", len(a.GetRoleName()))
	}
	return "/subscriptions/" + subID + "/providers/Microsoft.Authorization/roleDefinitions/" + def
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// managedCluster is the ARM representation of a managed cluster, with the
// properties the audit reads.
func managedCluster(c *secureauditv1.AksCluster) map[string]any {
	groups := orEmpty(c.GetAdminGroupObjectIds())
	return map[string]any{
		"id": c.GetId(), "name": c.GetName(), "type": "Microsoft.ContainerService/ManagedClusters", "location": "westeurope",
		"properties": map[string]any{
			"kubernetesVersion":        c.GetKubernetesVersion(),
			"currentKubernetesVersion": c.GetKubernetesVersion(),
			"enableRBAC":               c.GetKubernetesRbac(),
			"disableLocalAccounts":     !c.GetLocalAccountsEnabled(),
			"aadProfile": map[string]any{
				"managed": c.GetManagedEntra(), "enableAzureRBAC": c.GetAzureRbac(), "adminGroupObjectIDs": groups,
			},
			"apiServerAccessProfile": map[string]any{
				"enablePrivateCluster": c.GetPrivateCluster(), "authorizedIPRanges": orEmpty(c.GetAuthorizedIpRanges()),
				"disableRunCommand": c.GetRunCommandDisabled(),
			},
			"oidcIssuerProfile":  map[string]any{"enabled": c.GetOidcIssuerEnabled()},
			"securityProfile":    map[string]any{"workloadIdentity": map[string]any{"enabled": c.GetWorkloadIdentityEnabled()}},
			"podIdentityProfile": map[string]any{"enabled": c.GetPodIdentityEnabled()},
		},
	}
}

// identity serves a user-assigned managed identity (GET on its resource
// ID) or one page of its federated identity credentials (nextLink pointing
// at the next one).
func (s *Server) identity(w http.ResponseWriter, r *http.Request, lp string) {
	const credentials = "/federatedidentitycredentials"
	id, list := strings.CutSuffix(lp, credentials)
	s.mu.Lock()
	sp, ok := s.msis[id]
	size := s.pageSize
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The Resource '"+id+"' was not found.")
		return
	}
	rid := sp.GetResourceId()
	if !list {
		writeJSON(w, map[string]any{
			"id": rid, "name": rid[strings.LastIndex(rid, "/")+1:], "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "location": "westeurope",
			"properties": map[string]any{"tenantId": s.TenantID, "principalId": sp.GetId(), "clientId": sp.GetAppId()},
		})
		return
	}
	creds := sp.GetFederatedCredentials()
	start, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	start = min(max(start, 0), len(creds))
	end := min(start+size, len(creds))
	values := []map[string]any{}
	for _, fc := range creds[start:end] {
		values = append(values, map[string]any{
			"id":         rid + "/federatedIdentityCredentials/" + fc.GetName(),
			"name":       fc.GetName(),
			"type":       "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
			"properties": map[string]any{"issuer": fc.GetIssuer(), "subject": fc.GetSubject(), "audiences": []string{"api://AzureADTokenExchange"}},
		})
	}
	body := map[string]any{"value": values}
	if end < len(creds) {
		body["nextLink"] = s.next(r, end)
	}
	writeJSON(w, body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
