// Command report-agent serves ReportService: it answers "what should the
// team do?" by rendering an audit's findings into the documents readers
// receive (Markdown for reviewers, report.json for machines). It touches
// nothing outside its inputs and holds no credential but its certificate.
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
	"secureaudit.dev/services/report-agent/compose"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.ReportAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8444")
	if err := fs.Parse(args); err != nil {
		return err
	}
	manifest, err := scopes.Manifest(identity.ReportAgent)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.ReportAgent, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()
	srv := compose.NewServer(svc.Log)
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterReportServiceServer(s, srv) })
}
