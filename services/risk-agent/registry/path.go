package registry

// pathRules are the escalation-path rules (package paths). PATH-001 is also
// paths.RuleID.
var pathRules = []Rule{
	{
		ID: "PATH-001", Title: "escalation path to cluster-admin", Severity: critical,
		Rationale:   "The subject is not cluster-admin, but a chain of its permissions lets it become a subject that is (or act as system:masters): each step below names the capability, the grant behind it and what it leads to. The shortest such path is shown.",
		Controls:    []string{"CIS-5.1.1", "CIS-5.1.8", "SOC2-CC6.1", "SOC2-CC6.3"},
		Remediation: "Break the path at its first step: remove the capability from the subject's role or remove the subject from the binding.",
	},
}
