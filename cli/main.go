// Command secureaudit runs SecureAudit locally (up, scan) and talks to a
// running orchestrator (audit, list).
package main

import (
	"os"

	"secureaudit.dev/cli/command"
)

func main() {
	os.Exit(command.Execute(os.Args[1:], os.Stdout, os.Stderr))
}
