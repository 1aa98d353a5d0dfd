// Package tenanttest is a fake Entra tenant for tests: the token endpoint
// (OpenID discovery and client-credential tokens carrying Graph application
// roles), the part of Microsoft Graph the tenant source reads (users,
// groups with paged members and owners, service principals, applications
// and their federated credentials) and the part of Azure Resource Manager it
// reads (role assignments at a scope, role definitions), all served over
// HTTPS on loopback from a DirectorySnapshot. It can throttle (429 with
// Retry-After) or fail requests by path, and counts the requests it served.
package tenanttest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
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
}

// Server is the fake tenant.
type Server struct {
	// URL is the server's base, https://127.0.0.1:<port>.
	URL string
	// Client trusts the server's certificate.
	Client *http.Client
	// TenantID is the snapshot's tenant.
	TenantID string

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
	snap   *secureauditv1.DirectorySnapshot
}

// New starts a fake tenant serving snap, closed when the test ends. Its
// tokens carry the Graph application roles given (none by default).
func New(t testing.TB, snap *secureauditv1.DirectorySnapshot, roles ...string) *Server {
	t.Helper()
	s := &Server{
		TenantID: snap.GetTenantId(),
		roles:    roles,
		pageSize: 100,
		throttle: map[string]int{},
		fail:     map[string]int{},
		requests: map[string]int{},
		users:    map[string]*secureauditv1.DirectoryUser{},
		groups:   map[string]*secureauditv1.DirectoryGroup{},
		sps:      map[string]*secureauditv1.DirectoryServicePrincipal{},
		apps:     map[string]*secureauditv1.DirectoryServicePrincipal{},
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
	}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Client = s.srv.Client()
	return s
}

// SetPageSize sets how many members or owners one Graph page holds.
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
	claims, _ := json.Marshal(map[string]any{"tid": s.TenantID, "roles": roles})
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
	switch {
	case len(parts) == 2 && parts[0] == "users":
		u, ok := s.users[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "user "+parts[1])
			return
		}
		writeJSON(w, s.user(u, strings.Contains(r.URL.Query().Get("$select"), "signInActivity")))
	case len(parts) >= 2 && parts[0] == "groups":
		g, ok := s.groups[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "group "+parts[1])
			return
		}
		switch {
		case len(parts) == 2:
			writeJSON(w, s.group(g))
		case len(parts) == 3 && (parts[2] == "members" || parts[2] == "owners"):
			ids := g.GetMemberIds()
			if parts[2] == "owners" {
				ids = g.GetOwnerIds()
			}
			s.page(w, r, ids)
		default:
			writeError(w, http.StatusNotFound, "NotFound", path)
		}
	case len(parts) == 2 && parts[0] == "servicePrincipals":
		sp, ok := s.sps[strings.ToLower(parts[1])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", "service principal "+parts[1])
			return
		}
		writeJSON(w, s.servicePrincipal(sp))
	case len(parts) == 1 && strings.HasPrefix(parts[0], "servicePrincipals(appId="):
		sp, ok := s.apps[appKey(parts[0])]
		if !ok {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", parts[0])
			return
		}
		writeJSON(w, s.servicePrincipal(sp))
	case len(parts) == 1 && strings.HasPrefix(parts[0], "applications(appId="):
		sp, ok := s.apps[appKey(parts[0])]
		if !ok || sp.GetServicePrincipalType() != "Application" {
			writeError(w, http.StatusNotFound, "Request_ResourceNotFound", parts[0])
			return
		}
		secrets := make([]map[string]any, sp.GetPasswordCredentials())
		for i := range secrets {
			secrets[i] = map[string]any{"keyId": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "displayName": "secret"}
		}
		writeJSON(w, map[string]any{"id": "app-" + strings.ToLower(sp.GetId()), "passwordCredentials": secrets})
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

func appKey(seg string) string {
	_, v, _ := strings.Cut(seg, "=")
	return strings.ToLower(strings.Trim(strings.TrimSuffix(v, ")"), "'"))
}

// page serves one page of directory objects, @odata.nextLink pointing at
// the next one.
func (s *Server) page(w http.ResponseWriter, r *http.Request, ids []string) {
	s.mu.Lock()
	size := s.pageSize
	s.mu.Unlock()
	start, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	end := min(start+size, len(ids))
	values := []map[string]any{}
	for _, id := range ids[min(start, len(ids)):end] {
		if o := s.object(id); o != nil {
			values = append(values, o)
		}
	}
	body := map[string]any{"value": values}
	if end < len(ids) {
		body["@odata.nextLink"] = fmt.Sprintf("%s%s?$skiptoken=%d", s.URL, r.URL.Path, end)
	}
	writeJSON(w, body)
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
	if signIn && u.GetLastSignIn() != nil {
		m["signInActivity"] = map[string]any{"lastSignInDateTime": u.GetLastSignIn().AsTime().Format("2006-01-02T15:04:05Z")}
	}
	return m
}

func (s *Server) group(g *secureauditv1.DirectoryGroup) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.group", "id": g.GetId(), "displayName": g.GetDisplayName(), "description": g.GetDescription()}
}

func (s *Server) servicePrincipal(sp *secureauditv1.DirectoryServicePrincipal) map[string]any {
	return map[string]any{
		"@odata.type": "#microsoft.graph.servicePrincipal", "id": sp.GetId(), "appId": sp.GetAppId(),
		"displayName": sp.GetDisplayName(), "servicePrincipalType": sp.GetServicePrincipalType(), "passwordCredentials": []any{},
	}
}

// arm serves role assignments at a scope (atScope(): the scope and its
// ancestors) and role definitions by ID.
func (s *Server) arm(w http.ResponseWriter, r *http.Request, path string) {
	lp := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lp, "/providers/microsoft.authorization/roleassignments"):
		scope := strings.ToLower(strings.TrimSuffix(path[:len(path)-len("/providers/microsoft.authorization/roleassignments")], "/"))
		values := []map[string]any{}
		for _, a := range s.snap.GetRoleAssignments() {
			as := strings.ToLower(a.GetScope())
			if scope != as && !strings.HasPrefix(scope, as+"/") {
				continue
			}
			def, ok := RoleDefinitionIDs[a.GetRoleName()]
			if !ok {
				def = "00000000-0000-4000-8000-" + fmt.Sprintf("%012x", len(a.GetRoleName()))
			}
			sub := strings.Split(strings.Trim(a.GetScope(), "/"), "/")[1]
			values = append(values, map[string]any{
				"id": a.GetId(), "type": "Microsoft.Authorization/roleAssignments",
				"properties": map[string]any{
					"principalId": a.GetPrincipalId(), "principalType": a.GetPrincipalType(), "scope": a.GetScope(),
					"roleDefinitionId": "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + def,
				},
			})
		}
		slices.SortFunc(values, func(a, b map[string]any) int { return cmp.Compare(a["id"].(string), b["id"].(string)) })
		writeJSON(w, map[string]any{"value": values})
	case strings.Contains(lp, "/providers/microsoft.authorization/roledefinitions/"):
		id := path[strings.LastIndex(path, "/")+1:]
		for name, def := range RoleDefinitionIDs {
			if def == id {
				writeJSON(w, map[string]any{"id": path, "name": id, "properties": map[string]any{"roleName": name, "type": "BuiltInRole"}})
				return
			}
		}
		writeError(w, http.StatusNotFound, "RoleDefinitionDoesNotExist", id)
	default:
		writeError(w, http.StatusNotFound, "NotFound", path)
	}
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
