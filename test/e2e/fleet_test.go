package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pgtest"
)

// Sizes of the fleet test.
const (
	fleetClusters = 30
	fleetReplicas = 3
	// fleetInterval is every cluster's schedule; fleetLease the audit lease.
	fleetInterval = 12 * time.Second
	fleetLease    = 3 * time.Second
)

// TestFleetOnReplicas is the fleet with real parts: three orchestrator
// processes on one PostgreSQL database (Debian's server, started for the
// test), thirty rbac-agent processes serving thirty different snapshots
// (the example cluster, each with its own owner bound to cluster-admin)
// registered as thirty clusters with a schedule each (@every 12s), over
// real mTLS. Once every cluster has a succeeded audit, the first replica's
// risk-agent is stopped so its next audits hang at the assess stage, and
// the replica is killed with SIGKILL while it holds them. Then:
//
//   - every audit the killed replica was running is failed by a surviving
//     replica naming it (its lease expired), and its cluster's schedule
//     runs it again (a later audit of that cluster succeeds); one it had
//     claimed and not yet marked running is taken over by a survivor;
//   - no other audit failed, none is left pending or running;
//   - no schedule fired twice for one due time: a cluster's audits are
//     at least half an interval apart, and no more of them than due times;
//   - every succeeded audit's report is filed under its cluster and holds
//     that cluster's owner and no other cluster's;
//   - the evidence bundle over the test's period, exported from a surviving
//     replica, verifies with the shared key and has the summary of every
//     finished audit.
func TestFleetOnReplicas(t *testing.T) {
	began := time.Now()
	srv := pgtest.Start(t)
	name, err := srv.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECUREAUDIT_DB", srv.URL(name))

	// Thirty clusters, each its own snapshot and rbac-agent process.
	names := make([]string, fleetClusters)
	agents := make([]string, fleetClusters)
	for i := range names {
		names[i] = fmt.Sprintf("aks-fleet-%02d", i)
		agents[i], _ = startBinary(t, "rbac-agent", "-snapshot", fleetSnapshot(t, i), "-cluster", names[i])
	}
	t.Logf("%d rbac-agents started after %s", fleetClusters, time.Since(began).Round(time.Millisecond))

	// The victim replica has a risk-agent of its own, to hold its audits at
	// the assess stage when the test kills it.
	victimRisk, _, _, victimRiskProc := startProcess(t, "risk-agent")
	key := filepath.Join(t.TempDir(), "evidence.key")
	args := func(risk string) []string {
		return []string{
			"-rbac-agent", "", "-risk-agent", risk, "-report-agent", addr(t, "report-agent"),
			"-evidence-key", key, "-approve-bundled-scopes=true",
			"-audit-lease", fleetLease.String(), "-audit-workers", "4", "-schedule-tick", "1s",
			"-callers", filepath.Join(filepath.Dir(env.stack.PKIDir), "callers.yaml"),
		}
	}
	// One after the other: the first generates the key the others load.
	victim, victimLog, _, victimProc := startProcess(t, "orchestrator", args(victimRisk)...)
	replicas := []string{victim}
	logs := []string{victimLog}
	for range fleetReplicas - 1 {
		a, l := startBinary(t, "orchestrator", args(addr(t, "risk-agent"))...)
		replicas, logs = append(replicas, a), append(logs, l)
	}
	victimName := loggedReplica(t, victimLog)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	clients := make([]*client.Client, len(replicas))
	for i, a := range replicas {
		if clients[i], err = client.Dial(a, env.stack.PKIDir); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	survivor := clients[1]

	// Registered through every replica in turn, each with its schedule.
	for i, n := range names {
		_, err := clients[i%len(clients)].Clusters().RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Cluster: &secureauditv1.Cluster{
			Name: n, AgentAddress: agents[i], AgentSpiffeId: identity.ID(identity.RBACAgent).String(), Labels: map[string]string{"environment": "fleet-test"},
			Schedule: "@every " + fleetInterval.String(), SkipDirectory: true,
		}})
		if err != nil {
			t.Fatalf("register %s: %v", n, err)
		}
	}
	registered := time.Now()
	t.Logf("%d clusters registered after %s", fleetClusters, registered.Sub(began).Round(time.Millisecond))

	// Phase 1: every cluster has a succeeded audit.
	waitFor(ctx, t, "every cluster has a succeeded audit", func() (bool, string) {
		all := listAudits(ctx, t, survivor)
		done := map[string]bool{}
		for _, a := range all {
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
				done[a.GetCluster()] = true
			}
		}
		return len(done) == fleetClusters, fmt.Sprintf("%d of %d clusters, %d audits", len(done), fleetClusters, len(all))
	})
	t.Logf("first round done after %s", time.Since(began).Round(time.Millisecond))

	// Phase 2: the victim's next audits hang at assess; kill it while it
	// holds at least one.
	if err := victimRiskProc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer victimRiskProc.Signal(syscall.SIGCONT) //nolint:errcheck // the test's end
	var held []string
	waitFor(ctx, t, "the first replica holds an audit at the assess stage", func() (bool, string) {
		held = held[:0]
		for _, id := range unfinishedIn(t, victimLog) {
			got, err := survivor.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
			if err != nil {
				t.Fatal(err)
			}
			if got.GetAudit().GetState() == secureauditv1.AuditState_AUDIT_STATE_RUNNING {
				held = append(held, id)
			}
		}
		assessing := 0
		for _, id := range held {
			got, _ := survivor.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
			if got.GetAudit().GetStage() == secureauditv1.AuditStage_AUDIT_STAGE_ASSESS {
				assessing++
			}
		}
		return assessing > 0, fmt.Sprintf("%d running on it", len(held))
	})
	if err := victimProc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// What it held: the audits it logged as started and not finished that
	// are unfinished in the database (read now, when nothing changes them
	// until the lease expires), whatever it started after the list above too.
	// A running one is failed once the lease expired; one still pending (the
	// replica died between its claim and marking it running) is taken over
	// and run by a survivor.
	held = held[:0]
	heldState := map[string]secureauditv1.AuditState{}
	for _, id := range unfinishedIn(t, victimLog) {
		got, err := survivor.API().GetAudit(ctx, &secureauditv1.GetAuditRequest{AuditId: id})
		if err != nil {
			t.Fatal(err)
		}
		if s := got.GetAudit().GetState(); s == secureauditv1.AuditState_AUDIT_STATE_RUNNING || s == secureauditv1.AuditState_AUDIT_STATE_PENDING {
			held = append(held, id)
			heldState[id] = s
		}
	}
	t.Logf("killed replica %s after %s holding %d audits %v", victimName, killed.Sub(began).Round(time.Millisecond), len(held), heldState)
	if err := victimRiskProc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// Phase 3: the held audits are finished, and every cluster has a
	// succeeded audit started after the kill.
	waitFor(ctx, t, "the held audits finished and every cluster audited again after the kill", func() (bool, string) {
		all := listAudits(ctx, t, survivor)
		byID := map[string]*secureauditv1.Audit{}
		after := map[string]bool{}
		for _, a := range all {
			byID[a.GetId()] = a
			if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED && a.GetCreatedAt().AsTime().After(killed) {
				after[a.GetCluster()] = true
			}
		}
		var unfinished []string
		for _, id := range held {
			switch a := byID[id]; a.GetState() {
			case secureauditv1.AuditState_AUDIT_STATE_PENDING, secureauditv1.AuditState_AUDIT_STATE_RUNNING:
				unfinished = append(unfinished, fmt.Sprintf("%s %s at %s", id, a.GetState(), a.GetStage()))
			}
		}
		return len(unfinished) == 0 && len(after) == fleetClusters,
			fmt.Sprintf("held audits unfinished: %v; %d of %d clusters audited after the kill", unfinished, len(after), fleetClusters)
	})
	t.Logf("second round done after %s", time.Since(began).Round(time.Millisecond))

	// Stop the schedules and let what is queued finish.
	scheds, err := survivor.API().ListSchedules(ctx, &secureauditv1.ListSchedulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(scheds.GetSchedules()) != fleetClusters {
		t.Errorf("%d schedules, want one per cluster (%d)", len(scheds.GetSchedules()), fleetClusters)
	}
	for _, sc := range scheds.GetSchedules() {
		if strings.HasPrefix(sc.GetLastMessage(), "failed to start") {
			t.Errorf("schedule %s: %s", sc.GetName(), sc.GetLastMessage())
		}
		if _, err := survivor.API().DeleteSchedule(ctx, &secureauditv1.DeleteScheduleRequest{Name: sc.GetName()}); err != nil {
			t.Fatalf("delete schedule %s: %v", sc.GetName(), err)
		}
	}
	stopped := time.Now()
	var all []*secureauditv1.Audit
	waitFor(ctx, t, "no audit pending or running", func() (bool, string) {
		all = listAudits(ctx, t, survivor)
		n := 0
		for _, a := range all {
			if s := a.GetState(); s == secureauditv1.AuditState_AUDIT_STATE_PENDING || s == secureauditv1.AuditState_AUDIT_STATE_RUNNING {
				n++
			}
		}
		return n == 0, fmt.Sprintf("%d unfinished", n)
	})

	// Every audit: succeeded, or failed by the killed replica's lease and
	// run again.
	isHeld := map[string]bool{}
	for _, id := range held {
		isHeld[id] = true
	}
	failedHeld := 0
	// An audit it had marked running and not yet logged is held too: its
	// failure names the killed replica's lease.
	for _, a := range all {
		if a.GetState() == secureauditv1.AuditState_AUDIT_STATE_FAILED && !isHeld[a.GetId()] &&
			strings.Contains(a.GetError(), victimName) && strings.Contains(a.GetError(), "stopped renewing its lease") {
			t.Logf("audit %s of %s, held by the killed replica before its log said so: %s", a.GetId(), a.GetCluster(), a.GetError())
			isHeld[a.GetId()] = true
		}
	}
	skipped := skippedRuns(t, logs)
	byCluster := map[string][]*secureauditv1.Audit{}
	for _, a := range all {
		byCluster[a.GetCluster()] = append(byCluster[a.GetCluster()], a)
	}
	if len(byCluster) != fleetClusters {
		t.Errorf("audits of %d clusters, want %d", len(byCluster), fleetClusters)
	}
	succeeded := 0
	for cluster, audits := range byCluster {
		if !strings.HasPrefix(cluster, "aks-fleet-") {
			t.Errorf("audit %s of cluster %q: not one of the fleet's", audits[0].GetId(), cluster)
		}
		sort.Slice(audits, func(i, j int) bool {
			return audits[i].GetCreatedAt().AsTime().Before(audits[j].GetCreatedAt().AsTime())
		})
		for i, a := range audits {
			switch a.GetState() {
			case secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED:
				succeeded++
				if heldState[a.GetId()] == secureauditv1.AuditState_AUDIT_STATE_RUNNING {
					t.Errorf("audit %s of %s succeeded though the killed replica was running it", a.GetId(), cluster)
				}
			case secureauditv1.AuditState_AUDIT_STATE_FAILED:
				if !isHeld[a.GetId()] {
					t.Errorf("audit %s of %s failed, not held by the killed replica: %s", a.GetId(), cluster, a.GetError())
					break
				}
				failedHeld++
				for _, w := range []string{victimName, "stopped renewing its lease"} {
					if !strings.Contains(a.GetError(), w) {
						t.Errorf("audit %s of %s failed with %q, which does not say %q", a.GetId(), cluster, a.GetError(), w)
					}
				}
				rerun := false
				for _, b := range audits[i+1:] {
					rerun = rerun || b.GetState() == secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED
				}
				if !rerun {
					t.Errorf("audit %s of %s failed and was not run again", a.GetId(), cluster)
				}
			default:
				t.Errorf("audit %s of %s is %s: %s", a.GetId(), cluster, a.GetState(), a.GetError())
			}
			// No schedule run twice: one audit per due time, due times an
			// interval apart (the next is computed to the second).
			if i > 0 {
				if gap := a.GetCreatedAt().AsTime().Sub(audits[i-1].GetCreatedAt().AsTime()); gap < fleetInterval/2 {
					t.Errorf("audits %s and %s of %s started %s apart: a schedule run fired twice", audits[i-1].GetId(), a.GetId(), cluster, gap)
				}
			}
		}
		// Every due time an audit, or a run skipped (logged) while the
		// cluster's previous audit was still held; the next due time is
		// computed from the tick that fired, so allow one less.
		due := int(stopped.Sub(registered) / fleetInterval)
		if len(audits) > due+1 {
			t.Errorf("%d audits of %s in %s: more than its %d due times", len(audits), cluster, stopped.Sub(registered).Round(time.Second), due)
		}
		if n := len(audits) + skipped[cluster]; n < due-1 {
			t.Errorf("%d audits and %d skipped runs of %s in %s: fewer than its %d due times", len(audits), skipped[cluster], cluster, stopped.Sub(registered).Round(time.Second), due)
		}
	}
	if failedHeld == 0 {
		t.Error("no audit failed with the killed replica: the kill caught none running")
	}
	nSkipped := 0
	for _, n := range skipped {
		nSkipped += n
	}
	t.Logf("%d audits (%d succeeded, %d failed with the killed replica; %d runs skipped while an audit was held) of %d clusters in %s",
		len(all), succeeded, failedHeld, nSkipped, len(byCluster), time.Since(began).Round(time.Millisecond))

	// The fleet view from a surviving replica: every cluster's last audit
	// succeeded, no failure since.
	stdout, stderr, code := cli(t, "fleet", "--label", "environment=fleet-test", "--orchestrator", replicas[2], "--cert-dir", env.stack.PKIDir)
	if code != 0 {
		t.Fatalf("secureaudit fleet: exit %d\n%s%s", code, stdout, stderr)
	}
	rows := 0
	for _, line := range strings.Split(stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 9 && strings.HasPrefix(line, "aks-fleet-") {
			rows++
			if f[3] != "SUCCEEDED" || f[7] != "0" {
				t.Errorf("fleet row %q: want its last audit SUCCEEDED and no failure since", line)
			}
		}
	}
	if rows != fleetClusters || !strings.Contains(stdout, fmt.Sprintf("%d clusters", fleetClusters)) {
		t.Errorf("fleet view has %d cluster rows, want %d:\n%s", rows, fleetClusters, stdout)
	}

	// Every report under its cluster, with that cluster's snapshot in it.
	dir := t.TempDir()
	for _, a := range all {
		if a.GetState() != secureauditv1.AuditState_AUDIT_STATE_SUCCEEDED {
			continue
		}
		path := filepath.Join(dir, a.GetId()+".json")
		if err := survivor.Fetch(ctx, a.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_JSON, path); err != nil {
			t.Fatalf("report of audit %s: %v", a.GetId(), err)
		}
		r := readReport(t, path)
		if r.GetCluster() != a.GetCluster() || r.GetAuditId() != a.GetId() {
			t.Errorf("report of audit %s of %s: names audit %s of cluster %q", a.GetId(), a.GetCluster(), r.GetAuditId(), r.GetCluster())
		}
		owners := map[string]bool{}
		for _, f := range r.GetFindings() {
			if n := f.GetSubject().GetName(); strings.HasPrefix(n, "owner-aks-fleet-") {
				owners[n] = true
			}
		}
		if want := fleetOwner(a.GetCluster()); !owners[want] || len(owners) != 1 {
			t.Errorf("report of audit %s of %s: owners bound in it %v, want only %s", a.GetId(), a.GetCluster(), owners, want)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}

	// The evidence of the period, from a surviving replica, verifies and
	// summarises every finished audit.
	bundle := filepath.Join(t.TempDir(), "evidence.bundle")
	stdout, stderr, code = cli(t, "evidence", "export", "--orchestrator", replicas[2], "--cert-dir", env.stack.PKIDir,
		"--from", began.UTC().Format(time.RFC3339), "--out", bundle)
	if code != 0 {
		t.Fatalf("evidence export: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = cli(t, "evidence", "verify", bundle, "--public-key", publicKey(t, logs[1]))
	if code != 0 {
		t.Fatalf("evidence verify: exit %d\n%s%s", code, stdout, stderr)
	}
	summarised := bundleAuditSummaries(t, bundle)
	for _, a := range all {
		if got, ok := summarised[a.GetId()]; !ok {
			t.Errorf("the evidence bundle has no summary of audit %s of %s (%s)", a.GetId(), a.GetCluster(), a.GetState())
		} else if got != a.GetState().String() {
			t.Errorf("the evidence bundle summarises audit %s as %s, the store says %s", a.GetId(), got, a.GetState())
		}
	}
	for _, l := range logs[1:] {
		if publicKey(t, l) != publicKey(t, victimLog) {
			t.Errorf("%s signs with another key", l)
		}
	}
}

// fleetOwner is the user a fleet cluster's snapshot binds to cluster-admin.
func fleetOwner(cluster string) string { return "owner-" + cluster }

// fleetSnapshot writes the snapshot of fleet cluster i: the example cluster
// (its files copied) and one ClusterRoleBinding of cluster-admin to the
// cluster's own owner, so that its reports can be told from the others'.
func fleetSnapshot(t *testing.T, i int) string {
	t.Helper()
	src := filepath.Join(env.root, "examples", "cluster")
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("aks-fleet-%02d", i))
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	owner := fleetOwner(fmt.Sprintf("aks-fleet-%02d", i))
	crb := fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s-admin
  uid: 5f1e0c2a-0000-4000-8000-%012d
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: %s
`, owner, i, owner)
	if err := os.WriteFile(filepath.Join(dir, "owner.yaml"), []byte(crb), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor polls cond until it holds, failing the test with cond's last
// description when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting until %s: %v; last: %s", what, ctx.Err(), state)
		case <-tick.C:
		}
	}
}

// listAudits returns every audit, through every page.
func listAudits(ctx context.Context, t *testing.T, c *client.Client) []*secureauditv1.Audit {
	t.Helper()
	var all []*secureauditv1.Audit
	token := ""
	for {
		resp, err := c.API().ListAudits(ctx, &secureauditv1.ListAuditsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatalf("list audits: %v", err)
		}
		all = append(all, resp.GetAudits()...)
		if token = resp.GetNextPageToken(); token == "" {
			return all
		}
	}
}

// unfinishedIn returns the audits an orchestrator's log says it started and
// does not say it finished.
func unfinishedIn(t *testing.T, logPath string) []string {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	started := map[string]bool{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var line struct {
			Msg   string `json:"msg"`
			Audit string `json:"audit_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Audit == "" {
			continue
		}
		switch line.Msg {
		case "audit started":
			started[line.Audit] = true
			order = append(order, line.Audit)
		case "audit succeeded", "audit failed", "audit cancelled", "audit abandoned: this replica lost its lease":
			delete(started, line.Audit)
		}
	}
	var out []string
	for _, id := range order {
		if started[id] {
			out = append(out, id)
		}
	}
	return out
}

// bundleAuditSummaries returns the state of each audit summarised in an
// evidence bundle, by audit ID.
func bundleAuditSummaries(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entries []struct {
			Record string `json:"record"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("bundle %s: %v", path, err)
	}
	out := map[string]string{}
	for _, e := range b.Entries {
		var rec struct {
			Kind string          `json:"kind"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(e.Record), &rec); err != nil || rec.Kind != "audit.summary" {
			continue
		}
		var s struct {
			AuditID string `json:"auditId"`
			State   string `json:"state"`
		}
		if err := json.Unmarshal(rec.Data, &s); err != nil {
			t.Fatalf("audit summary in %s: %v", path, err)
		}
		out[s.AuditID] = s.State
	}
	return out
}

// skippedRuns counts, by cluster, the scheduled runs the orchestrators
// logged as skipped because an audit of the cluster was pending or running.
func skippedRuns(t *testing.T, logs []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			var rec struct {
				Msg     string `json:"msg"`
				Cluster string `json:"cluster"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "scheduled audit skipped" {
				out[rec.Cluster]++
			}
		}
	}
	return out
}
