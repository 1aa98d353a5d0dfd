// Command entra-agent serves EntraService: it answers "who are these
// principals?" for the users and groups an RBAC snapshot names, from a
// directory snapshot file (Microsoft Graph comes later). Only the orchestrator
// may call it.
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
	"secureaudit.dev/services/entra-agent/directory"
)

func main() { run.Main(realMain) }

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(identity.EntraAgent, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common run.Flags
	common.Register(fs, "127.0.0.1:8442")
	dirEnv := run.EnvName("directory")
	directoryPath := fs.String("directory", run.EnvOr(dirEnv, ""),
		"directory snapshot file (protojson of secureaudit.v1.DirectorySnapshot); without it Resolve fails with FailedPrecondition (env "+dirEnv+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Load the directory first: an invalid file stops the agent before it serves.
	var src directory.Source
	if *directoryPath != "" {
		snap, err := directory.Load(*directoryPath)
		if err != nil {
			return err
		}
		src = snap
	}
	manifest, err := scopes.Manifest(identity.EntraAgent)
	if err != nil {
		return err
	}
	svc, err := run.Setup(identity.EntraAgent, common, manifest, stderr)
	if err != nil {
		return err
	}
	defer svc.Close()
	if src == nil {
		svc.Log.Warn("no directory source configured; Resolve fails with FailedPrecondition until one is")
	} else {
		svc.Log.Info("directory snapshot loaded", "directory", *directoryPath)
	}
	srv := directory.NewServer(svc.Log, src)
	return svc.Serve(ctx, func(s *grpc.Server) { secureauditv1.RegisterEntraServiceServer(s, srv) })
}
