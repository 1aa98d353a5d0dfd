// Package tenant is the entra-agent's live source: it resolves principals in
// an Entra tenant through Microsoft Graph and reads, through Azure Resource
// Manager, the AKS cluster's access configuration, every role assignment
// whose role opens a route into the cluster (at the cluster, its namespaces,
// its resource group, subscription and management groups, the role
// definitions' actions and data actions read), and the user-assigned
// managed identities behind managed-identity service principals. The
// principals of those assignments and the cluster's admin groups are
// resolved too, so the answer holds everyone reaching the cluster through
// Azure alone. It loads
// only what the principals it is asked about lead to: the users, groups and
// service principals they name, the members and owners of those groups
// through every level of nesting, the managed identities among them with
// their federated credentials, and the role assignments on the cluster's
// scope. Throttled and failing requests are retried by the SDKs' retry
// policies (honouring Retry-After); lookups that still fail are returned as
// errors and mark the answer partial.
package tenant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/google/uuid"
	azauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/entra-agent/directory"
)

// Defaults of Config.
const (
	DefaultGraphURL    = "https://graph.microsoft.com/v1.0"
	DefaultARMURL      = "https://management.azure.com"
	DefaultConcurrency = 8
	DefaultMaxRetries  = 5
)

// ReadOnlyPermissions are the Graph application permissions the agent
// declares and needs. Any other application permission in its token is
// reported as excess.
var ReadOnlyPermissions = []string{"Application.Read.All", "AuditLog.Read.All", "GroupMember.Read.All", "PrivilegedAssignmentSchedule.Read.AzureADGroup", "PrivilegedEligibilitySchedule.Read.AzureADGroup", "User.Read.All"}

// Config configures a Source.
type Config struct {
	// GraphURL is the Graph API base, DefaultGraphURL when empty.
	GraphURL string
	// ARMURL is the Resource Manager endpoint, DefaultARMURL when empty.
	ARMURL string
	// ClusterID is the AKS cluster's ARM resource ID. Empty: nothing is read
	// from ARM (no role assignments, no managed identities).
	ClusterID string
	// Concurrency bounds the requests in flight, DefaultConcurrency when 0.
	Concurrency int
	// MaxRetries bounds the retries of a throttled (429) or unavailable
	// (5xx) request, DefaultMaxRetries when 0 (at most 10).
	MaxRetries int
	// HTTPClient is the client both SDKs send through (nil: the default).
	// Tests use it to trust a loopback server's certificate.
	HTTPClient *http.Client
	// Allowed are the Graph application permissions the agent may hold,
	// ReadOnlyPermissions when nil.
	Allowed []string
	// Subscriptions are the Azure subscriptions (IDs) whose AKS clusters a
	// request may name; a request naming a cluster in another is refused
	// (directory.ClusterError). Empty: any subscription, bounded only by
	// the credential's Azure role assignments.
	Subscriptions []string
}

// Source resolves principals against a live tenant. It is safe for
// concurrent use.
type Source struct {
	log         *slog.Logger
	cred        azcore.TokenCredential
	cfg         Config
	graph       *msgraphsdk.GraphServiceClient
	graphScope  string
	assignments *armauthorization.RoleAssignmentsClient
	definitions *armauthorization.RoleDefinitionsClient
	// eligibilities and activations are Privileged Identity Management's
	// eligible assignments and the active assignments' schedules.
	eligibilities *armauthorization.RoleEligibilityScheduleInstancesClient
	activations   *armauthorization.RoleAssignmentScheduleInstancesClient
	// scope is the configured cluster (Config.ClusterID), nil without one;
	// scopes the clusters requests named (ResolveCluster), by lower-case
	// resource ID.
	scope      *clusterScope
	scopes     sync.Map
	opts       *arm.ClientOptions
	roleDefs   sync.Map    // lower-case role definition ID -> *roleDefinition
	identities *identities // user-assigned managed identities, per subscription
}

// clusterScope is an AKS cluster whose Azure access a run reads, with the
// ARM clients bound to its subscription.
type clusterScope struct {
	id     string
	parsed *arm.ResourceID
	// assignments are the role assignments, denies the deny assignments
	// that refuse what a role allows.
	assignments *armauthorization.RoleAssignmentsClient
	denies      *armauthorization.DenyAssignmentsClient
	clusters    *armcontainerservice.ManagedClustersClient
}

// clusterForm is the form of an AKS cluster's resource ID, for errors.
const clusterForm = "want /subscriptions/<subscription ID>/resourceGroups/<group>/providers/Microsoft.ContainerService/managedClusters/<name>"

// clusterName is an AKS cluster's name as Azure allows it: 1 to 63
// letters, digits, underscores and hyphens, starting and ending with a
// letter or digit.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)

// parseCluster checks that id is a well-formed AKS cluster resource ID in
// one of subs (any subscription when subs is empty) and parses it. Its
// errors are *directory.ClusterError, naming the ID.
func parseCluster(id string, subs []string) (*arm.ResourceID, error) {
	bad := func(format string, args ...any) error {
		return &directory.ClusterError{ID: id, Reason: fmt.Sprintf(format, args...)}
	}
	p := strings.Split(id, "/")
	if len(p) != 9 || p[0] != "" || !strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.ContainerService") || !strings.EqualFold(p[7], "managedClusters") {
		return nil, bad("not the resource ID of an AKS managed cluster: %s", clusterForm)
	}
	sub, group, name := p[2], p[4], p[8]
	if !isGUID(sub) {
		return nil, bad("subscription %q is not a subscription ID (a GUID): %s", sub, clusterForm)
	}
	if !resourceGroup(group) {
		return nil, bad("resource group %q is no valid name (1 to 90 letters, digits, underscores, hyphens, periods and parentheses, not ending in a period)", group)
	}
	if !clusterName.MatchString(name) {
		return nil, bad("cluster name %q is no valid AKS cluster name (1 to 63 letters, digits, underscores and hyphens, starting and ending with a letter or digit)", name)
	}
	if len(subs) > 0 && !slices.ContainsFunc(subs, func(s string) bool { return strings.EqualFold(s, sub) }) {
		return nil, bad("subscription %s is not one this entra-agent may read (-subscriptions %s)", sub, strings.Join(subs, ","))
	}
	parsed, err := arm.ParseResourceID(id)
	if err != nil {
		return nil, bad("%v", err)
	}
	return parsed, nil
}

// resourceGroup reports whether name is a valid resource group name.
func resourceGroup(name string) bool {
	if name == "" || utf8.RuneCountInString(name) > 90 || strings.HasSuffix(name, ".") {
		return false
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && !strings.ContainsRune("_-.()", c) {
			return false
		}
	}
	return true
}

// newScope builds the ARM clients of the cluster id.
func (s *Source) newScope(id string) (*clusterScope, error) {
	parsed, err := parseCluster(id, s.cfg.Subscriptions)
	if err != nil {
		return nil, err
	}
	sub := parsed.SubscriptionID
	c := &clusterScope{id: id, parsed: parsed}
	if c.assignments, err = armauthorization.NewRoleAssignmentsClient(sub, s.cred, s.opts); err != nil {
		return nil, fmt.Errorf("role assignments client: %w", err)
	}
	if c.denies, err = armauthorization.NewDenyAssignmentsClient(sub, s.cred, s.opts); err != nil {
		return nil, fmt.Errorf("deny assignments client: %w", err)
	}
	if c.clusters, err = armcontainerservice.NewManagedClustersClient(sub, s.cred, s.opts); err != nil {
		return nil, fmt.Errorf("managed clusters client: %w", err)
	}
	return c, nil
}

// scopeOf returns the cluster a request names (its clients built once),
// the configured one when it names none.
func (s *Source) scopeOf(id string) (*clusterScope, error) {
	if id == "" || s.scope != nil && strings.EqualFold(id, s.scope.id) {
		return s.scope, nil
	}
	key := strings.ToLower(id)
	if c, ok := s.scopes.Load(key); ok {
		return c.(*clusterScope), nil
	}
	c, err := s.newScope(id)
	if err != nil {
		return nil, err
	}
	got, _ := s.scopes.LoadOrStore(key, c)
	return got.(*clusterScope), nil
}

// New returns a Source authenticating with cred.
func New(log *slog.Logger, cred azcore.TokenCredential, cfg Config) (*Source, error) {
	cfg.GraphURL = strings.TrimSuffix(cmp.Or(cfg.GraphURL, DefaultGraphURL), "/")
	cfg.ARMURL = strings.TrimSuffix(cmp.Or(cfg.ARMURL, DefaultARMURL), "/")
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.MaxRetries = min(cmp.Or(cfg.MaxRetries, DefaultMaxRetries), 10)
	if cfg.Allowed == nil {
		cfg.Allowed = ReadOnlyPermissions
	}
	for _, sub := range cfg.Subscriptions {
		if !isGUID(sub) {
			return nil, fmt.Errorf("subscriptions: %q is not a subscription ID (a GUID)", sub)
		}
	}
	gu, err := url.Parse(cfg.GraphURL)
	if err != nil || gu.Scheme != "https" || gu.Host == "" {
		return nil, fmt.Errorf("graph url %q: must be an https URL", cfg.GraphURL)
	}
	// The token is requested for Graph's resource; a loopback fake accepts it.
	scope := "https://graph.microsoft.com/.default"
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{scope}, []string{gu.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("graph authentication: %w", err)
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, graphClient(cfg))
	if err != nil {
		return nil, fmt.Errorf("graph adapter: %w", err)
	}
	adapter.SetBaseUrl(cfg.GraphURL)
	s := &Source{log: log, cred: cred, cfg: cfg, graph: msgraphsdk.NewGraphServiceClient(adapter), graphScope: scope}
	// The clients that are not bound to a subscription serve every
	// cluster; the others are built per cluster (newScope).
	s.opts = armOptions(cfg)
	if s.definitions, err = armauthorization.NewRoleDefinitionsClient(cred, s.opts); err != nil {
		return nil, fmt.Errorf("role definitions client: %w", err)
	}
	if s.eligibilities, err = armauthorization.NewRoleEligibilityScheduleInstancesClient(cred, s.opts); err != nil {
		return nil, fmt.Errorf("role eligibility schedule instances client: %w", err)
	}
	if s.activations, err = armauthorization.NewRoleAssignmentScheduleInstancesClient(cred, s.opts); err != nil {
		return nil, fmt.Errorf("role assignment schedule instances client: %w", err)
	}
	s.identities = newIdentities(cred, s.opts)
	if cfg.ClusterID != "" {
		if s.scope, err = s.newScope(cfg.ClusterID); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// graphClient is Graph's default middleware pipeline with the retry
// handler configured: 429, 503 and 504 retried MaxRetries times, waiting
// for Retry-After when the response has one.
func graphClient(cfg Config) *http.Client {
	mws := msgraphcore.GetDefaultMiddlewaresWithOptions(&msgraphcore.GraphClientOptions{})
	for i, m := range mws {
		switch m.(type) {
		case *khttp.RetryHandler, khttp.RetryHandler:
			mws[i] = khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{
				MaxRetries:   cfg.MaxRetries,
				DelaySeconds: 1,
				ShouldRetry:  func(_ time.Duration, _ int, _ *http.Request, _ *http.Response) bool { return true },
			})
		}
	}
	var parent http.RoundTripper
	if cfg.HTTPClient != nil {
		parent = cfg.HTTPClient.Transport
	}
	return &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(parent, mws...)}
}

// armOptions points the ARM clients at cfg.ARMURL with azcore's retry
// policy (408, 429, 500, 502, 503, 504, honouring Retry-After).
func armOptions(cfg Config) *arm.ClientOptions {
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: int32(cfg.MaxRetries)},
	}}
	if cfg.ARMURL != DefaultARMURL {
		opts.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: cloud.AzurePublic.ActiveDirectoryAuthorityHost,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: cfg.ARMURL, Audience: "https://management.core.windows.net/"},
			},
		}
	}
	if cfg.HTTPClient != nil {
		opts.Transport = cfg.HTTPClient
	}
	return opts
}

// Resolve implements directory.Source: ResolveCluster with the configured
// cluster (Config.ClusterID).
func (s *Source) Resolve(ctx context.Context, principals []*secureauditv1.Principal) (*directory.Result, error) {
	return s.ResolveCluster(ctx, "", principals)
}

// ResolveCluster implements directory.ClusterSource: it resolves the
// principals and reads the Azure access of the AKS cluster whose ARM
// resource ID is cluster (the configured one when empty; none when neither
// is set).
func (s *Source) ResolveCluster(ctx context.Context, cluster string, principals []*secureauditv1.Principal) (*directory.Result, error) {
	scope, err := s.scopeOf(cluster)
	if err != nil {
		return nil, err
	}
	r := newRun(s)
	r.scope = scope
	for _, p := range principals {
		r.spawn(func() { r.principal(ctx, p) })
	}
	if scope != nil {
		// The routes through Azure alone: the cluster's admin groups and
		// every role assignment reaching it, their principals resolved.
		r.spawn(func() { r.managedCluster(ctx) })
		r.spawn(func() { r.roleAssignments(ctx) })
		// Privileged Identity Management: the eligible assignments (each
		// listed as eligible, not standing) and which active assignments
		// are activations of one.
		r.spawn(func() { r.roleEligibilities(ctx) })
		r.spawn(func() { r.activationsOf(ctx) })
		// Deny assignments: a route one of them blocks is no route (the
		// risk-agent decides which, with the directory's groups).
		r.spawn(func() { r.denyAssignments(ctx) })
	}
	r.wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.enrichApplications(ctx)
	if scope != nil {
		r.enrichIdentities(ctx)
	}
	r.signIns(ctx)
	r.wg.Wait()
	excess, err := s.ExcessPermissions(ctx)
	if err != nil {
		r.fail("own access token", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The tenant is presented so the orchestrator can refuse an agent of
	// another tenant than the audited cluster's; without it the
	// orchestrator refuses the answer of a cluster registered with one.
	// A tenant the agent cannot tell is a lookup error of the answer (its
	// identity data partial, the reason named), not only a log line.
	tid, err := s.TenantID(ctx)
	if err == nil {
		if _, err = uuid.Parse(tid); err != nil {
			err = fmt.Errorf("tid claim %q is not a UUID", tid)
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "tenant of the credential unknown", "error", err.Error())
		r.fail("tenant of the agent's credential (the access token's tid claim)", err)
	}
	res := r.result()
	res.ExcessPermissions = excess
	if err == nil {
		res.TenantID = strings.ToLower(tid)
	}
	if scope != nil {
		res.ClusterResourceID = scope.id
	}
	for _, a := range res.RoleAssignments {
		if !a.GetEligible() && r.activated[lower(a.GetId())] {
			a.Activated = true
		}
	}
	return res, nil
}

// statusOf returns the HTTP status of a Graph or ARM error, 0 if none.
func statusOf(err error) int {
	var graphErr interface{ GetStatusCode() int }
	if errors.As(err, &graphErr) {
		return graphErr.GetStatusCode()
	}
	var armErr *azcore.ResponseError
	if errors.As(err, &armErr) {
		return armErr.StatusCode
	}
	return 0
}

// isGUID reports whether s looks like an object ID.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func sortedIDs(ids map[string]bool) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
