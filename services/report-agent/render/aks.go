package render

import (
	"fmt"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// aksFinding reports whether a finding judges the AKS cluster's
// configuration or a route into it through Azure: the family the
// risk-agent's rule registry gave it, shown in its own section rather than
// among the identity or permission issues.
func aksFinding(f *secureauditv1.Finding) bool {
	return f.GetFamily() == secureauditv1.RuleFamily_RULE_FAMILY_AKS
}

// aksView is the AKS cluster's access configuration as the report shows it:
// one row per setting, with the finding that judges it when one does.
type aksView struct {
	ID       string
	Version  string
	Settings []aksSetting
}

// aksSetting is one row of the AKS configuration table.
type aksSetting struct {
	Name  string
	Value string
	// Findings are the anchors and numbers of the findings about it.
	Findings []aksRef
}

type aksRef struct {
	Number int
	Anchor string
}

// settingRules maps each setting to the rule that judges it.
var settingRules = map[string]string{
	"Local accounts":                    "AKS-001",
	"Microsoft Entra integration":       "AKS-002",
	"Azure RBAC for Kubernetes":         "AKS-003",
	"API server access":                 "AKS-004",
	"Pod identity add-on (deprecated)":  "AKS-005",
	"OIDC issuer and workload identity": "AKS-006",
	"Kubernetes RBAC":                   "AKS-007",
}

// newAKSView builds the table from the cluster's configuration, linking
// each setting to the findings of its rule; nil without a cluster.
func newAKSView(c *secureauditv1.AksCluster, findings []*findingView) *aksView {
	if c == nil {
		return nil
	}
	onOff := func(b bool, on, off string) string {
		if b {
			return on
		}
		return off
	}
	access := "public, no authorized IP ranges"
	switch {
	case c.GetPrivateCluster():
		access = "private cluster"
	case len(c.GetAuthorizedIpRanges()) > 0:
		access = "public, authorized IP ranges " + strings.Join(c.GetAuthorizedIpRanges(), ", ")
	}
	groups := "none"
	if len(c.GetAdminGroupObjectIds()) > 0 {
		groups = strings.Join(c.GetAdminGroupObjectIds(), ", ") + " (members are cluster-admin without a binding; see the access review)"
	}
	v := &aksView{ID: c.GetId(), Version: c.GetKubernetesVersion()}
	rows := [][2]string{
		{"Kubernetes version", orUnknown(c.GetKubernetesVersion())},
		{"Kubernetes RBAC", onOff(c.GetKubernetesRbac(), "enabled", "disabled")},
		{"Local accounts", onOff(c.GetLocalAccountsEnabled(), "enabled (listClusterAdminCredential returns a system:masters certificate)", "disabled")},
		{"Microsoft Entra integration", onOff(c.GetManagedEntra(), "managed", "not enabled")},
		{"Azure RBAC for Kubernetes", onOff(c.GetAzureRbac(), "enabled (role assignments at the cluster and namespace scopes grant Kubernetes permissions)", "disabled")},
		{"Admin groups", groups},
		{"API server access", access},
		{"Run command", onOff(c.GetRunCommandDisabled(), "disabled", "enabled (runCommand runs kubectl as cluster-admin through ARM)")},
		{"OIDC issuer and workload identity", onOff(c.GetOidcIssuerEnabled(), "OIDC issuer enabled", "OIDC issuer disabled") + ", " + onOff(c.GetWorkloadIdentityEnabled(), "workload identity enabled", "workload identity disabled")},
		{"Pod identity add-on (deprecated)", onOff(c.GetPodIdentityEnabled(), "enabled", "disabled")},
	}
	for _, r := range rows {
		s := aksSetting{Name: r[0], Value: r[1]}
		for _, f := range findings {
			id, ok := settingRules[r[0]]
			// The admin groups' members are judged by AKS-008 on the
			// group's own grant.
			adminGroup := r[0] == "Admin groups" && f.RuleID == "AKS-008" && strings.HasPrefix(f.Binding, "AKS admin group ")
			if ok && f.RuleID == id || adminGroup {
				s.Findings = append(s.Findings, aksRef{Number: f.Number, Anchor: f.Anchor})
			}
		}
		v.Settings = append(v.Settings, s)
	}
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// refs renders the finding links of a setting in Markdown.
func (s aksSetting) refs() string {
	if len(s.Findings) == 0 {
		return "no finding"
	}
	parts := make([]string, len(s.Findings))
	for i, f := range s.Findings {
		parts[i] = fmt.Sprintf("[#%d](#%s)", f.Number, f.Anchor)
	}
	return strings.Join(parts, ", ")
}

func writeAKS(b textWriter, v view) {
	b.WriteString("## AKS configuration\n\n")
	if v.AKSCluster == nil && len(v.AKS) == 0 {
		b.WriteString("Not evaluated: the audit had no AKS cluster configuration (the entra-agent reads it from Azure Resource Manager when it is given the cluster's resource ID, or from a directory snapshot's aksCluster).\n\n")
		return
	}
	if c := v.AKSCluster; c != nil {
		fmt.Fprintf(b, "The cluster's access settings as Azure Resource Manager reports them for `%s`.\n\n", strings.ReplaceAll(c.ID, "`", "'"))
		b.WriteString("| setting | value | finding |\n|---|---|---|\n")
		for _, s := range c.Settings {
			fmt.Fprintf(b, "| %s | %s | %s |\n", s.Name, md(s.Value), s.refs())
		}
		b.WriteString("\n")
	}
	if len(v.AKS) == 0 {
		b.WriteString("No AKS configuration rule matched.\n\n")
		return
	}
	for _, f := range v.AKS {
		writeFinding(b, f, v)
	}
	b.WriteString("\n")
}
