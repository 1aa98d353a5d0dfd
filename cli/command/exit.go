package command

import "errors"

// Exit codes of the secureaudit command, documented in the root command's
// help and the README.
const (
	// ExitOK: the command succeeded (an audit that found issues succeeded too,
	// unless --fail-on says otherwise).
	ExitOK = 0
	// ExitError: the command failed: the audit failed, the orchestrator was
	// unreachable, a file could not be read...
	ExitError = 1
	// ExitUsage: the command line was wrong (unknown flag or value).
	ExitUsage = 2
	// ExitFindings: the audit succeeded and found issues at or above the
	// --fail-on severity.
	ExitFindings = 3
)

// exitHelp documents the exit codes for --help.
const exitHelp = `Exit codes:
  0  success (an audit that finds issues still succeeds, unless --fail-on says otherwise)
  1  failure: the audit failed, the orchestrator was unreachable, a file could not be read
  2  usage: an unknown flag, argument or value
  3  the audit found issues at or above the --fail-on severity`

// codeError carries an exit code with an error.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

// usageError marks err as a mistake on the command line (exit code 2).
func usageError(err error) error { return &codeError{code: ExitUsage, err: err} }

// findingsError marks a successful audit that crossed --fail-on (exit code 3).
func findingsError(err error) error { return &codeError{code: ExitFindings, err: err} }

// exitCode returns the exit code for err.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return ExitError
}
