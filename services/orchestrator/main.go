// Command orchestrator serves the public AuditService: it runs each audit
// through the rbac-agent, entra-agent, risk-agent and report-agent, stores the
// results in its database (a SQLite file, or PostgreSQL) and streams
// progress. It holds no cluster or directory credential.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/authz"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/run"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/services/orchestrator/acceptance"
	"secureaudit.dev/services/orchestrator/approval"
	"secureaudit.dev/services/orchestrator/audit"
	"secureaudit.dev/services/orchestrator/cluster"
	"secureaudit.dev/services/orchestrator/controls"
	"secureaudit.dev/services/orchestrator/evidence"
	"secureaudit.dev/services/orchestrator/people"
	"secureaudit.dev/services/orchestrator/regression"
	"secureaudit.dev/services/orchestrator/review"
	"secureaudit.dev/services/orchestrator/schedule"
	"secureaudit.dev/services/orchestrator/storage"
	"secureaudit.dev/services/orchestrator/store"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.Orchestrator, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8440")
	str := func(name, def, usage string) *string {
		return fs.String(name, run.EnvOr(run.EnvName(name), def), usage+" (env "+run.EnvName(name)+")")
	}
	rbacAddr := str("rbac-agent", "127.0.0.1:8441", "address of the default rbac-agent, for audits of no registered cluster; empty: every audit names a registered cluster (secureaudit cluster add), whose own rbac-agent it dials")
	entraAddr := str("entra-agent", "", "address of the default entra-agent, for audits of clusters registered without an Entra tenant or whose tenant has no -tenant-entra-agent (its answer must then present that tenant); audits run without identity data when empty")
	var tenants tenantFlag
	tenantEnv := run.EnvName("tenant-entra-agent")
	fs.Var(&tenants, "tenant-entra-agent", "TENANT=HOST:PORT[,SPIFFE-ID]: the entra-agent that resolves the audits of clusters registered with Entra tenant TENANT (secureaudit cluster add --tenant), dialled over mTLS requiring SPIFFE-ID (default: the default entra-agent's ID in this trust domain, which every tenant's agent may then carry alike: give each tenant's agent an identity of its own, a distinct ServiceAccount, and its ID here) and checked for its approved scope manifest at every audit; its answers must present that tenant. Repeat for each tenant (env "+tenantEnv+", entries separated by spaces). A cluster registered with a tenant neither this nor -entra-agent serves fails its audits")
	riskAddr := str("risk-agent", "127.0.0.1:8443", "address of the risk-agent")
	reportAddr := str("report-agent", "127.0.0.1:8444", "address of the report-agent")
	dbDSN := str("db", "secureaudit.db", "database: a SQLite file (created with mode 0600), or postgres://user:password@host:5432/name?sslmode=verify-full for PostgreSQL (several replicas; pass it in the environment from a Secret, not on the command line)")
	keyPath := str("evidence-key", "", "signing key of the evidence log, generated with mode 0600 at first start (default: evidence.key next to a SQLite -db; required with PostgreSQL, the same key for every replica)")
	webhook := str("controls-webhook", "", "URL that token baseline alerts are POSTed to as JSON (optional)")
	regressionEvery := str("regression-interval", "24h", "how often to re-run the reference cases (baseline regression); 0 disables the schedule")
	refuseCred := str("refuse-on-credential-violation", "false", "refuse audits while an agent presents a credential broader than its scope manifest (CC6.2)")
	workersFlag := str("audit-workers", "1", "how many audits this replica runs at once (of different clusters: two audits of one cluster never overlap, across replicas too)")
	leaseFlag := str("audit-lease", audit.DefaultLease.String(), "how long a replica holds an audit without renewing (it renews every third of it); past it another replica on the database fails the audit, naming the replica")
	scheduleTick := str("schedule-tick", "30s", "how often due audit schedules are checked (secureaudit schedule add); 0 disables scheduling")
	budgets := map[string]*string{}
	for _, b := range []struct {
		name, agent string
		def         time.Duration
	}{
		{"collect", "rbac-agent", audit.DefaultBudgets.Collect},
		{"resolve", "entra-agent", audit.DefaultBudgets.Resolve},
		{"assess", "risk-agent", audit.DefaultBudgets.Assess},
		{"render", "report-agent", audit.DefaultBudgets.Render},
	} {
		budgets[b.name] = str(b.name+"-timeout", b.def.String(), "how long the "+b.name+" stage may wait for the "+b.agent+"; past it the audit fails naming the agent and the stage, and the next audit runs")
	}
	devApprove := str("approve-bundled-scopes", "false", "DEVELOPMENT ONLY: record an approval of the bundled agent scope manifests at start (secureaudit up and scan use it)")
	callersFile := str("callers", "", "caller policy file giving the public API's callers (SPIFFE IDs or path patterns) their roles: viewer, operator, approver, auditor (deploy/callers/callers.yaml); required")
	oidcIssuer := str("oidc-issuer", "", "OpenID Connect issuer whose ID tokens name the people behind decisions (Entra ID: https://login.microsoftonline.com/TENANT_ID/v2.0); without it only -dev-unverified-approvers decisions are possible")
	oidcAudience := str("oidc-audience", "", "client ID the ID tokens must be issued to (aud)")
	oidcCA := str("oidc-ca-file", "", "PEM bundle to verify the issuer's HTTPS certificate with instead of the system roots")
	expiringFlag := str("acceptances-expiring-days", "14", "how many days ahead the report lists risk acceptances about to expire")
	reviewDueFlag := str("review-due-days", "14", "how many days after its audit an access review campaign is due; undecided items are then overdue (an alert, CC4.1)")
	devUnverified := str("dev-unverified-approvers", "false", "DEVELOPMENT ONLY: accept an approver's name as typed instead of a verified ID token (secureaudit up and scan use it); such approvals are marked UNVERIFIED")
	if err := tenants.setEnv(os.Getenv(tenantEnv)); err != nil {
		return fmt.Errorf("%s: %w", tenantEnv, err)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	refuseOnViolation, err := strconv.ParseBool(*refuseCred)
	if err != nil {
		return fmt.Errorf("-refuse-on-credential-violation: %w", err)
	}
	approveBundled, err := strconv.ParseBool(*devApprove)
	if err != nil {
		return fmt.Errorf("-approve-bundled-scopes: %w", err)
	}
	expiringDays, err := strconv.Atoi(*expiringFlag)
	if err != nil || expiringDays < 0 || expiringDays > 366 {
		return fmt.Errorf("-acceptances-expiring-days: %q is not a number of days from 0 to 366", *expiringFlag)
	}
	reviewDueDays, err := strconv.Atoi(*reviewDueFlag)
	if err != nil || reviewDueDays < 1 || reviewDueDays > 366 {
		return fmt.Errorf("-review-due-days: %q is not a number of days from 1 to 366", *reviewDueFlag)
	}
	unverified, err := strconv.ParseBool(*devUnverified)
	if err != nil {
		return fmt.Errorf("-dev-unverified-approvers: %w", err)
	}
	if *callersFile == "" {
		return errors.New("-callers is required: the caller policy file giving callers their roles (deploy/callers/callers.yaml; secureaudit up writes a development one)")
	}
	every, err := time.ParseDuration(*regressionEvery)
	if err != nil || every < 0 {
		return fmt.Errorf("-regression-interval: want a duration such as 24h, got %q", *regressionEvery)
	}
	workers, err := strconv.Atoi(*workersFlag)
	if err != nil || workers < 1 || workers > 64 {
		return fmt.Errorf("-audit-workers: want a number from 1 to 64, got %q", *workersFlag)
	}
	lease, err := time.ParseDuration(*leaseFlag)
	if err != nil || lease < time.Second {
		return fmt.Errorf("-audit-lease: want a duration of at least 1s such as 30s, got %q", *leaseFlag)
	}
	tick, err := time.ParseDuration(*scheduleTick)
	if err != nil || tick < 0 {
		return fmt.Errorf("-schedule-tick: want a duration such as 30s, got %q", *scheduleTick)
	}
	var stageBudgets audit.Budgets
	for name, dst := range map[string]*time.Duration{"collect": &stageBudgets.Collect, "resolve": &stageBudgets.Resolve, "assess": &stageBudgets.Assess, "render": &stageBudgets.Render} {
		d, err := time.ParseDuration(*budgets[name])
		if err != nil || d <= 0 {
			return fmt.Errorf("-%s-timeout: want a positive duration such as 10m, got %q", name, *budgets[name])
		}
		*dst = d
	}
	if *riskAddr == "" || *reportAddr == "" {
		return errors.New("-risk-agent and -report-agent are required")
	}

	manifest, err := scopes.Manifest(identity.Orchestrator)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.Orchestrator, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()
	// The caller policy, checked against the manifest now rather than when
	// the server is built: a bad file stops the start naming its line.
	if svc.Callers, err = authz.LoadCallers(*callersFile); err != nil {
		return err
	}
	if _, err := authz.NewPolicy(svc.Manifest, svc.Callers); err != nil {
		return err
	}
	decisions := []approval.Option{approval.WithRefuseOnCredentialViolation(refuseOnViolation)}
	var verifier acceptance.Verifier
	if *oidcIssuer != "" || *oidcAudience != "" {
		v, err := people.New(people.Config{Issuer: *oidcIssuer, Audience: *oidcAudience, CAFile: *oidcCA})
		if err != nil {
			return fmt.Errorf("-oidc-issuer, -oidc-audience: %w", err)
		}
		decisions = append(decisions, approval.WithPeople(v))
		verifier = v
	}
	if unverified {
		svc.Log.Warn("DEVELOPMENT: approvers' names are accepted as typed, unverified (-dev-unverified-approvers); not for production")
		decisions = append(decisions, approval.WithUnverifiedApprovers(true))
	}

	db, err := storage.Open(ctx, *dbDSN, svc.Log)
	if err != nil {
		return err
	}
	defer db.Close()
	svc.Log.Info("database", "backend", db.Dialect().String(), "database", db.String())
	st := store.New(db)
	svc.AddReadiness("store", st.Ping)
	replica, err := replicaName()
	if err != nil {
		return err
	}
	svc.Log.Info("replica", "name", replica)

	// Controls alerts, anomalies and tokens per item, with the RPC metrics:
	// -metrics-file, OTLP and the health port's /metrics (run.Flags).
	mp := svc.Metrics.Provider
	if *keyPath == "" {
		if db.Dialect() != storage.SQLite {
			return errors.New("-evidence-key is required with a PostgreSQL -db: every replica signs the evidence log with the same key (a Secret mounted as a file)")
		}
		*keyPath = filepath.Join(filepath.Dir(db.String()), "evidence.key")
	}
	evlog, err := evidence.New(ctx, db, *keyPath)
	if err != nil {
		return err
	}
	svc.Log.Info("evidence log", "public_key", evlog.PublicKey())

	// Token alerts (CC3.4) and anomaly events (CC7.2) are appended to the
	// evidence log as they are raised.
	monitor, err := controls.New(st, mp, svc.Log, controls.WithWebhook(*webhook, nil), controls.WithEvidence(evlog))
	if err != nil {
		return err
	}
	// Refused calls to this server (platform/authz logs them) become CC7.2
	// anomaly events.
	// They are counted per source and method and stored once per window
	// (controls.DefaultRefusalWindow), so a flood writes a few rows.
	tap := controls.NewTap(svc.Log.Handler(), monitor, controls.DefaultRefusalWindow)
	defer tap.Flush(context.Background())
	svc.Log = slog.New(tap)

	manifests := map[string]*scope.Manifest{}
	for _, w := range identity.Workloads {
		if w == identity.CLI {
			continue
		}
		data, err := scopes.Manifest(w)
		if err != nil {
			return err
		}
		if manifests[w], err = scope.Parse(data); err != nil {
			return err
		}
	}
	reg := approval.New(db, evlog, manifests, svc.Log, decisions...)
	if approveBundled {
		if err := reg.ApproveDevelopment(ctx, svc.Creds.ID().String()); err != nil {
			return err
		}
	}
	svc.Observer = reg

	var agents audit.Agents
	var conns []*grpc.ClientConn
	var scoped []approval.Agent
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, a := range []struct {
		addr, workload string
		set            func(*grpc.ClientConn)
	}{
		{*rbacAddr, identity.RBACAgent, func(c *grpc.ClientConn) { agents.RBAC = secureauditv1.NewRBACServiceClient(c) }},
		{*entraAddr, identity.EntraAgent, func(c *grpc.ClientConn) { agents.Entra = secureauditv1.NewEntraServiceClient(c) }},
		{*riskAddr, identity.RiskAgent, func(c *grpc.ClientConn) { agents.Risk = secureauditv1.NewRiskServiceClient(c) }},
		{*reportAddr, identity.ReportAgent, func(c *grpc.ClientConn) { agents.Report = secureauditv1.NewReportServiceClient(c) }},
	} {
		if a.addr == "" {
			continue
		}
		conn, err := svc.Dial(a.addr, a.workload)
		if err != nil {
			return err
		}
		conns = append(conns, conn)
		scoped = append(scoped, approval.Agent{Workload: a.workload, Conn: conn})
		a.set(conn)
	}

	// The entra-agents of tenants: dialled once, each checked for its
	// approved scope manifest by the audits that use it.
	var tenantConns []audit.TenantAgent
	idTenants := map[string]string{} // SPIFFE ID: the first tenant it serves
	for _, t := range tenants.tenantAgents {
		id := identity.ID(identity.EntraAgent)
		if t.id != "" {
			if id, err = identity.Parse(t.id); err != nil {
				return fmt.Errorf("-tenant-entra-agent %s: %w", t.tenant, err)
			}
		}
		// The tenant an agent presents is its word: only a SPIFFE ID of
		// its own per tenant keeps another tenant's agent (or the default
		// one) from answering at its address.
		if other, ok := idTenants[id.String()]; ok {
			svc.Log.Warn("entra-agents of two tenants are dialled requiring the same SPIFFE ID: either may answer for the other; give each tenant's agent an identity of its own (-tenant-entra-agent TENANT=HOST:PORT,SPIFFE-ID)",
				"tenant", t.tenant, "other_tenant", other, "spiffe_id", id.String())
		} else {
			idTenants[id.String()] = t.tenant
		}
		if t.id == "" {
			svc.Log.Warn("the entra-agent of a tenant is dialled requiring the default entra-agent's SPIFFE ID: any entra-agent of the trust domain may answer for it; give it an identity of its own (-tenant-entra-agent TENANT=HOST:PORT,SPIFFE-ID)",
				"tenant", t.tenant, "spiffe_id", id.String())
		}
		conn, err := rpc.Dial(t.addr, id, rpc.ClientConfig{Credentials: svc.Creds, Tracer: svc.Tracing.Provider, Meter: svc.Metrics.Provider, Validator: svc.Validator, Observer: svc.Observer})
		if err != nil {
			return fmt.Errorf("-tenant-entra-agent %s: %w", t.tenant, err)
		}
		conns = append(conns, conn)
		tenantConns = append(tenantConns, audit.TenantAgent{Tenant: t.tenant, Address: t.addr, ID: id.String(), Conn: conn})
		svc.Log.Info("entra-agent of a tenant", "tenant", t.tenant, "address", t.addr, "spiffe_id", id.String())
	}

	runner := audit.NewRunner(agents, st, svc.Log, svc.Tracing.Provider.Tracer("secureaudit/orchestrator"))
	runner.TenantsWith(*entraAddr, tenantConns...)
	for _, a := range scoped {
		if a.Workload == identity.EntraAgent {
			runner.EntraConnWith(a.Conn)
		}
	}
	runner.SetBudgets(stageBudgets)
	runner.ObserveWith(monitor)
	runner.RecordTo(evlog)
	// Risk acceptances: by verified people only, never typed names.
	accepts := acceptance.New(db, evlog, st, verifier, svc.Log, acceptance.ExpiringWithin(time.Duration(expiringDays)*24*time.Hour))
	runner.AcceptWith(accepts)
	// Access review campaigns: decisions by verified people, revocations
	// verified by the next audit of the cluster.
	reviews := review.New(db, evlog, st, verifier, svc.Log, review.DueIn(time.Duration(reviewDueDays)*24*time.Hour))
	runner.ReviewWith(reviews)
	reg.SetAgents(scoped)
	// Calls an agent refused are CC7.2 anomalies: the agent presents them
	// in a response header, read at every scope check.
	reg.OnRefusals(func(ctx context.Context, workload string, newly uint64, refused rpc.Refusals) {
		for _, a := range refusalAnomalies(workload, newly, refused) {
			if err := monitor.Record(ctx, a); err != nil {
				svc.Log.ErrorContext(ctx, "record refusal anomaly", "error", err.Error())
			}
		}
	})
	baseline := regression.NewRunner(regression.Agents{Risk: agents.Risk, Report: agents.Report}, evlog, svc.Log)
	// A changed answering model re-runs the baseline regression (CC3.4, CC9.2).
	monitor.OnModelChange(func(ctx context.Context, answering string) {
		if _, err := baseline.ModelChanged(ctx, answering); err != nil {
			svc.Log.ErrorContext(ctx, "regression after a model change", "error", err.Error())
		}
	})
	runner.GateWith(reg)
	// Registered clusters: each audit of one dials its own rbac-agent,
	// expecting the registered SPIFFE ID.
	runner.AgentScopesWith(reg)
	runner.ClustersWith(st, func(addr string, id spiffeid.ID) (*grpc.ClientConn, error) {
		return rpc.Dial(addr, id, rpc.ClientConfig{Credentials: svc.Creds, Tracer: svc.Tracing.Provider, Meter: svc.Metrics.Provider, Validator: svc.Validator, Observer: svc.Observer})
	})
	runner.SetReplica(replica)
	runner.SetLease(lease, 0)
	// A SQLite file has one orchestrator: what it left unfinished failed
	// with it. On PostgreSQL other replicas may be running those audits:
	// they are failed only once their lease expired (the runner's reaper).
	if db.Dialect() == storage.SQLite {
		if err := runner.Recover(ctx); err != nil {
			return err
		}
	}
	service := audit.NewService(runner, st, svc.Log)
	scheduler := schedule.New(st, service.Start, svc.Log, schedule.WithReplica(replica))
	var clusterOpts []cluster.Option
	if tick > 0 {
		service.ScheduleWith(scheduler)
		clusterOpts = append(clusterOpts, cluster.WithSchedules(scheduler))
	}
	// A schedule is overdue in the fleet view when a few ticks passed its
	// next run without the scheduler running it.
	clusterOpts = append(clusterOpts, cluster.WithFleet(st), cluster.WithOverdueAfter(max(cluster.DefaultOverdueAfter, 3*tick)), cluster.WithEvidence(evlog))
	if agents.Report != nil {
		// The fleet report is rendered by the report-agent, as audits' are.
		clusterOpts = append(clusterOpts, cluster.WithRenderer(agents.Report))
	}
	clusters := cluster.NewServer(st, svc.Log, clusterOpts...)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// -audit-workers audits at once, never two of one cluster (the
		// claim skips an audit while another of its cluster is held);
		// further audits wait in the queue, for any replica to claim.
		runner.Run(ctx, workers)
		return nil
	})
	g.Go(func() error {
		reg.Run(ctx)
		return nil
	})
	if tick > 0 {
		g.Go(func() error {
			scheduler.Run(ctx, tick)
			return nil
		})
	}
	if every > 0 {
		g.Go(func() error {
			baseline.Schedule(ctx, every)
			return nil
		})
	}
	g.Go(func() error {
		return svc.Serve(ctx, func(s *grpc.Server) {
			secureauditv1.RegisterAuditServiceServer(s, service)
			secureauditv1.RegisterClusterServiceServer(s, clusters)
			secureauditv1.RegisterControlsServiceServer(s, controls.NewServer(monitor, svc.Log))
			secureauditv1.RegisterEvidenceServiceServer(s, evidence.NewServer(evlog, svc.Log))
			secureauditv1.RegisterScopeServiceServer(s, approval.NewServer(reg, svc.Log))
			secureauditv1.RegisterAcceptanceServiceServer(s, acceptance.NewServer(accepts, svc.Log))
			secureauditv1.RegisterReviewServiceServer(s, review.NewServer(reviews, svc.Log))
			secureauditv1.RegisterRegressionServiceServer(s, regression.NewServer(baseline, svc.Log))
		})
	})
	return g.Wait()
}

// refusalAnomalies turns the refusals an agent presented into anomaly
// events: one per source, method and outcome with refusals new since the
// last check, carrying how many (count) and when the first and latest were;
// any new refusals the entries do not account for are counted on the last
// event (not_detailed).
func refusalAnomalies(workload string, newly uint64, refused rpc.Refusals) []*secureauditv1.Anomaly {
	var out []*secureauditv1.Anomaly
	var detailed uint64
	for _, r := range refused.Recent {
		kind := secureauditv1.AnomalyKind_ANOMALY_KIND_DENIED_RPC
		who := r.Caller
		if r.Caller == "" {
			kind = secureauditv1.AnomalyKind_ANOMALY_KIND_UNEXPECTED_IDENTITY
			who = "an unauthenticated caller"
			if r.Address != "" {
				who += " from " + r.Address
			}
		}
		count := max(r.Count, 1)
		detailed += count
		ev := map[string]string{"method": r.Method, "code": r.Code, "refused_at": r.Time.Format(time.RFC3339Nano), "count": strconv.FormatUint(count, 10)}
		if !r.First.IsZero() {
			ev["first_refused_at"] = r.First.Format(time.RFC3339Nano)
		}
		if r.Caller != "" {
			ev["caller"] = r.Caller
		}
		if r.Address != "" {
			ev["address"] = r.Address
		}
		if r.Reason != "" {
			ev["reason"] = truncate(r.Reason, 2048)
		}
		summary := fmt.Sprintf("%s refused %s calling %s", workload, who, r.Method)
		if count > 1 {
			summary = fmt.Sprintf("%s refused %s calling %s %d times", workload, who, r.Method, count)
		}
		out = append(out, &secureauditv1.Anomaly{
			Kind:     kind,
			Time:     timestamppb.New(r.Time),
			Source:   workload,
			Summary:  truncate(summary, 1024),
			Evidence: ev,
		})
	}
	if newly > detailed && len(out) > 0 {
		out[len(out)-1].Evidence["not_detailed"] = strconv.FormatUint(newly-detailed, 10)
	}
	return out
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// replicaName names this process among the replicas on one database: the
// host (the pod's name in Kubernetes), the process ID and a random suffix, so
// that a restarted pod is a new replica and never renews its predecessor's
// leases.
func replicaName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "orchestrator"
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("replica name: %w", err)
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b)), nil
}
