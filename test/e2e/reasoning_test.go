package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"secureaudit.dev/cli/client"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// fakeModel is an OpenAI-compatible server on loopback (plain HTTP, as
// Ollama serves) that answers every batch correctly.
func fakeModel(t *testing.T) *httptest.Server {
	findingIDs := regexp.MustCompile(`"id":"([0-9a-f]{16})"`)
	subjectIDs := regexp.MustCompile(`"id":"(s[0-9]+)"`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) != 2 || r.Header.Get("Authorization") != "Bearer e2e-key" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		system, user := req.Messages[0].Content, req.Messages[1].Content
		var answer any
		if strings.Contains(system, "executive summary") {
			answer = map[string]string{"executiveSummary": "E2E model summary."}
		} else {
			notes, access := []map[string]string{}, []map[string]string{}
			for _, m := range findingIDs.FindAllStringSubmatch(user, -1) {
				notes = append(notes, map[string]string{"findingId": m[1], "explanation": "E2E model explanation.", "firstStep": "E2E first step."})
			}
			for _, m := range subjectIDs.FindAllStringSubmatch(user, -1) {
				access = append(access, map[string]string{"subjectId": m[1], "plausibility": "PLAUSIBILITY_QUESTIONABLE", "reason": "E2E reason."})
			}
			answer = map[string]any{"findings": notes, "access": access}
		}
		text, _ := json.Marshal(answer)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "c1", "object": "chat.completion", "created": 1, "model": "e2e-model-2026-01-01",
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": string(text)}}},
			"usage":   map[string]any{"prompt_tokens": len(system+user) / 4, "completion_tokens": len(text) / 4, "total_tokens": 1},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startRiskAgent runs a risk-agent process with a model provider.
func startRiskAgent(t *testing.T, baseURL string) string {
	t.Helper()
	listen := deadAddr(t)
	logPath := filepath.Join(t.TempDir(), "risk-agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.binDir, "risk-agent"), "-listen", listen, "-cert-dir", env.stack.PKIDir,
		"-reasoning-provider", "openai", "-reasoning-model", "e2e-model", "-reasoning-base-url", baseURL)
	cmd.Env = append(os.Environ(), "SECUREAUDIT_REASONING_API_KEY=e2e-key")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		logFile.Close()
		data, _ := os.ReadFile(logPath)
		if strings.Contains(string(data), "e2e-key") {
			t.Error("the risk-agent logged its API key")
		}
		if t.Failed() {
			t.Logf("risk-agent log:\n%s", data)
		}
	})
	// The orchestrator's first dial must find it serving: gRPC backs off
	// after a refused connection. Wait until the port accepts.
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("risk-agent not listening on %s: %v", listen, err)
		}
		runtime.Gosched()
	}
	return listen
}

// TestAuditWithModel: an audit through a risk-agent with a model provider
// shows model text beside the findings, labelled; its findings are the
// same as without a provider; the controls recorded the calls and the
// planted injection.
func TestAuditWithModel(t *testing.T) {
	model := fakeModel(t)
	risk := startRiskAgent(t, model.URL+"/v1/")
	orch := startOrchestrator(t,
		"-rbac-agent", addr(t, "rbac-agent"),
		"-entra-agent", addr(t, "entra-agent"),
		"-risk-agent", risk,
		"-report-agent", addr(t, "report-agent"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(orch, env.stack.PKIDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := t.TempDir()
	res, err := c.Run(ctx, client.Options{OutDir: out, Formats: client.Formats, WaitForReady: true})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	var keys []string
	for _, f := range report.GetFindings() {
		keys = append(keys, findingKey(f))
	}
	for _, f := range report.GetInfrastructureFindings() {
		keys = append(keys, "appendix "+findingKey(f))
	}
	sort.Strings(keys)
	// The same golden as the audit without a provider.
	checkGolden(t, "example_findings.txt", strings.Join(keys, "\n")+"\n")

	r := report.GetReasoning()
	if r.GetProvider() != "openai" || r.GetModel() != "e2e-model-2026-01-01" || len(r.GetAnnotations()) != len(report.GetFindings()) ||
		r.GetSummarySource() != secureauditv1.TextSource_TEXT_SOURCE_MODEL {
		t.Errorf("reasoning = provider %q model %q, %d annotations for %d findings, summary %s",
			r.GetProvider(), r.GetModel(), len(r.GetAnnotations()), len(report.GetFindings()), r.GetSummarySource())
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**Model output** (model output (openai, e2e-model-2026-01-01)", "E2E model explanation.", "E2E model summary."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	controls := secureauditv1.NewControlsServiceClient(c.Conn())
	tokens, err := controls.GetTokenControls(ctx, &secureauditv1.GetTokenControlsRequest{AuditId: res.Audit.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens.GetCalls()) < 2 || len(tokens.GetBaselines()) != 1 || tokens.GetCalls()[0].GetResponseModel() != "e2e-model-2026-01-01" {
		t.Errorf("token controls = %v", tokens)
	}
	anomalies, err := controls.ListAnomalies(ctx, &secureauditv1.ListAnomaliesRequest{AuditId: res.Audit.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	injection := false
	for _, a := range anomalies.GetAnomalies() {
		if a.GetKind() == secureauditv1.AnomalyKind_ANOMALY_KIND_INJECTION && strings.Contains(a.GetEvidence()["object"], "github-deployer-cluster-admin") {
			injection = true
		}
	}
	if !injection {
		t.Errorf("no injection anomaly for the planted annotation: %v", anomalies.GetAnomalies())
	}
}
