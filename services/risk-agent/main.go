// Command risk-agent serves RiskService: it answers "what does it mean?" by
// running the deterministic rule catalogue over an RBAC snapshot (and the
// directory objects that resolve its subjects), scanning every cluster and
// directory string for planted instructions, streaming the findings, and
// then annotating them through the reasoning step (templates by default, or
// a language model). It holds no Kubernetes or directory credential.
//
// Configuration (each flag also read from its SECUREAUDIT_* environment
// variable; see run.Flags for the common ones):
//
//	-listen                        127.0.0.1:8443   (SECUREAUDIT_LISTEN)
//	-cert-dir                      (none)           (SECUREAUDIT_CERT_DIR); directory with risk-agent.crt, risk-agent.key, ca.crt
//	-reasoning-provider            none             (SECUREAUDIT_REASONING_PROVIDER); none, openai, azure-openai, anthropic
//	-reasoning-model               (none)           (SECUREAUDIT_REASONING_MODEL); requested model, e.g. gpt-4.1-mini, claude-sonnet-4-5, llama3.1
//	-reasoning-base-url            (provider's)     (SECUREAUDIT_REASONING_BASE_URL); e.g. http://127.0.0.1:11434/v1 for Ollama
//	-reasoning-api-key-file        (none)           (SECUREAUDIT_REASONING_API_KEY_FILE); file holding the API key
//	-reasoning-api-key-env         SECUREAUDIT_REASONING_API_KEY (SECUREAUDIT_REASONING_API_KEY_ENV); variable holding the key when no file is set
//	-reasoning-timeout             60s              (SECUREAUDIT_REASONING_TIMEOUT); per call
//	-reasoning-token-budget        200000           (SECUREAUDIT_REASONING_TOKEN_BUDGET); input+output tokens per audit
//	-reasoning-max-output-tokens   4096             (SECUREAUDIT_REASONING_MAX_OUTPUT_TOKENS); per call
//	-reasoning-max-retries         1                (SECUREAUDIT_REASONING_MAX_RETRIES); SDK retries on 429 and 5xx
//	-metrics-file                  (none)           (SECUREAUDIT_METRICS_FILE); append OpenTelemetry metrics (GenAI token usage, duration) as JSON
//
// The API key is never logged nor echoed in errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/run"
	"secureaudit.dev/services/risk-agent/assess"
	entra "secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/reasoning"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.RiskAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8443")
	str := func(name, def, usage string) *string {
		return fs.String(name, run.EnvOr(run.EnvName(name), def), usage+" (env "+run.EnvName(name)+")")
	}
	provider := str("reasoning-provider", reasoning.ProviderNone, "reasoning provider: none (deterministic text), openai, azure-openai or anthropic")
	model := str("reasoning-model", "", "requested model")
	baseURL := str("reasoning-base-url", "", "API base URL (OpenAI-compatible servers such as Ollama or vLLM, Azure OpenAI, a proxy)")
	keyFile := str("reasoning-api-key-file", "", "file holding the API key")
	keyEnv := str("reasoning-api-key-env", "SECUREAUDIT_REASONING_API_KEY", "environment variable holding the API key when no key file is set")
	timeout := str("reasoning-timeout", "60s", "timeout of each model call")
	budget := str("reasoning-token-budget", "200000", "input and output tokens one audit may spend")
	maxOut := str("reasoning-max-output-tokens", "4096", "output tokens per call")
	retries := str("reasoning-max-retries", "1", "SDK retries of a call refused with 429 or 5xx")
	stale := str("stale-days", strconv.Itoa(entra.DefaultStaleDays), "days without a sign-in after which an account with cluster access is stale (ENTRA-010), 1 to 3650")
	expiry := str("credential-expiry-days", strconv.Itoa(entra.DefaultCredentialExpiryDays), "days before its end date from which a client secret or certificate of an identity with cluster access is reported as expiring (ENTRA-013), 1 to 3650")
	secretAge := str("secret-max-age-days", strconv.Itoa(entra.DefaultSecretMaxAgeDays), "age in days past which a client secret of an identity with cluster access is reported as due for rotation (ENTRA-013), 1 to 3650")
	if err := fs.Parse(args); err != nil {
		return err
	}
	idCfg := entra.Config{}
	var err error
	if idCfg.StaleDays, err = parseDays("stale-days", *stale); err != nil {
		return err
	}
	if idCfg.CredentialExpiryDays, err = parseDays("credential-expiry-days", *expiry); err != nil {
		return err
	}
	if idCfg.SecretMaxAgeDays, err = parseDays("secret-max-age-days", *secretAge); err != nil {
		return err
	}
	cfg := reasoning.Config{Provider: *provider, Model: *model, BaseURL: *baseURL}
	if cfg.Timeout, err = time.ParseDuration(*timeout); err != nil {
		return fmt.Errorf("-reasoning-timeout: %w", err)
	}
	if cfg.TokenBudget, err = strconv.ParseInt(*budget, 10, 64); err != nil {
		return fmt.Errorf("-reasoning-token-budget: %w", err)
	}
	if cfg.MaxOutputTokens, err = strconv.ParseInt(*maxOut, 10, 64); err != nil {
		return fmt.Errorf("-reasoning-max-output-tokens: %w", err)
	}
	if cfg.MaxRetries, err = strconv.Atoi(*retries); err != nil {
		return fmt.Errorf("-reasoning-max-retries: %w", err)
	}
	if cfg.Provider != reasoning.ProviderNone {
		if cfg.APIKey, err = reasoning.LoadKey(*keyFile, *keyEnv); err != nil {
			return err
		}
	}
	manifest, err := scopes.Manifest(identity.RiskAgent)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.RiskAgent, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()
	// GenAI token usage and duration, with the RPC metrics: -metrics-file,
	// OTLP and the health port's /metrics (run.Flags).
	meter, err := reasoning.NewMeter(svc.Metrics.Provider)
	if err != nil {
		return err
	}
	reasoner, err := reasoning.New(cfg, meter, svc.Log)
	if err != nil {
		return err
	}
	srv := assess.NewServer(svc.Log, assess.WithReasoner(reasoner), assess.WithIdentityConfig(idCfg))
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, srv) })
}

// parseDays reads a -name flag of whole days from 1 to 3650.
func parseDays(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 3650 {
		return 0, fmt.Errorf("-%s %q: want a whole number of days from 1 to 3650", name, s)
	}
	return n, nil
}
