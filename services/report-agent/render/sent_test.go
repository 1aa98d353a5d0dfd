package render

import (
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// sentControls are the controls, with their titles, that the risk-agent's
// rule registry lists in every assessment (AssessSummary.controls, which
// the orchestrator copies to Report.controls): test input as the
// report-agent receives it, copied from services/risk-agent/registry.
var sentControls = []*secureauditv1.ControlTitle{
	{Id: "CIS-5.1.1", Title: "Ensure that the cluster-admin role is only used where required"},
	{Id: "CIS-5.1.2", Title: "Minimize access to secrets"},
	{Id: "CIS-5.1.3", Title: "Minimize wildcard use in Roles and ClusterRoles"},
	{Id: "CIS-5.1.4", Title: "Minimize access to create pods"},
	{Id: "CIS-5.1.5", Title: "Ensure that default service accounts are not actively used"},
	{Id: "CIS-5.1.6", Title: "Ensure that Service Account Tokens are only mounted where necessary"},
	{Id: "CIS-5.1.7", Title: "Avoid use of system:masters group"},
	{Id: "CIS-5.1.8", Title: "Limit use of the Bind, Impersonate and Escalate permissions"},
	{Id: "CIS-5.1.9", Title: "Minimize access to create persistent volumes"},
	{Id: "CIS-5.1.10", Title: "Minimize access to the proxy sub-resource of nodes"},
	{Id: "CIS-5.1.11", Title: "Minimize access to the approval sub-resource of certificatesigningrequests"},
	{Id: "CIS-5.1.12", Title: "Minimize access to webhook configuration objects"},
	{Id: "CIS-5.1.13", Title: "Minimize access to the service account token creation"},
	{Id: "SOC2-CC6.1", Title: "Logical access security over protected information assets"},
	{Id: "SOC2-CC6.2", Title: "Access is granted on authorization and removed when no longer needed"},
	{Id: "SOC2-CC6.3", Title: "Access is role-based, least privilege, with segregation of duties"},
	{Id: "SOC2-CC6.8", Title: "Unauthorized or malicious software is prevented or detected"},
	{Id: "SOC2-CC7.2", Title: "Anomalies are monitored and evaluated"},
}

// sentFamilies are the families the risk-agent's registry gives the rule
// IDs the tests use; every other test rule is an RBAC rule.
var sentFamilies = map[string]secureauditv1.RuleFamily{
	"ENTRA-002": secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY,
	"ENTRA-010": secureauditv1.RuleFamily_RULE_FAMILY_IDENTITY,
	"PATH-001":  secureauditv1.RuleFamily_RULE_FAMILY_PATH,
}

// asSent completes hand-built test findings as the risk-agent's finding
// builder sends them: with the rule's family and the titles of the
// controls each finding bears on (its own and its folded hits'), and the
// report with the registry's controls. Resolved findings of the history
// stay as they are: an earlier audit may have stored them without.
func asSent(r *secureauditv1.Report) *secureauditv1.Report {
	r.Controls = sentControls
	titles := map[string]string{}
	for _, c := range sentControls {
		titles[c.GetId()] = c.GetTitle()
	}
	for _, f := range append(append([]*secureauditv1.Finding(nil), r.GetFindings()...), r.GetInfrastructureFindings()...) {
		f.Family = secureauditv1.RuleFamily_RULE_FAMILY_RBAC
		if fam, ok := sentFamilies[f.GetRuleId()]; ok {
			f.Family = fam
		}
		f.ControlTitles = nil
		for _, id := range controlsOf(f) {
			if t, ok := titles[id]; ok {
				f.ControlTitles = append(f.ControlTitles, &secureauditv1.ControlTitle{Id: id, Title: t})
			}
		}
	}
	return r
}
