// Command risk-agent serves RiskService: it answers "what does it mean?" by
// running the deterministic rule catalogue over an RBAC snapshot (and the
// directory objects that resolve its subjects) and streaming the findings.
// It holds no Kubernetes or directory credential.
//
// Configuration (each flag also read from its SECUREAUDIT_* environment
// variable; see run.Flags for the common ones):
//
//	-listen              127.0.0.1:8443   (SECUREAUDIT_LISTEN)
//	-cert-dir            (none)           (SECUREAUDIT_CERT_DIR); directory with risk-agent.crt, risk-agent.key, ca.crt
//	-reasoning-provider  none             (SECUREAUDIT_REASONING_PROVIDER); only "none" exists
package main

import (
	"context"
	"flag"
	"io"

	"google.golang.org/grpc"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/run"
	"secureaudit.dev/services/risk-agent/assess"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.RiskAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8443")
	provider := fs.String("reasoning-provider", run.EnvOr(run.EnvName("reasoning-provider"), assess.ProviderNone),
		"reasoning provider; only \"none\" (deterministic text) is available (env "+run.EnvName("reasoning-provider")+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := assess.CheckProvider(*provider); err != nil {
		return err
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
	srv := assess.NewServer(svc.Log)
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterRiskServiceServer(s, srv) })
}
