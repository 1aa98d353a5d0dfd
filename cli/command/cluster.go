package command

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"secureaudit.dev/cli/client"
	"secureaudit.dev/cli/stack"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
)

func newCluster() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Register the clusters the orchestrator audits (a fleet)",
		Long: `cluster keeps the orchestrator's registry of clusters. Each cluster is served by its own
rbac-agent, running inside it under that cluster's read-only ServiceAccount with -cluster set to
the registered name. An audit of a registered cluster (secureaudit audit --cluster NAME, or its
schedule) dials that rbac-agent over mTLS, expecting the registered SPIFFE ID, and fails if the
agent presents another cluster's name: a mis-registered address never files a report under the
wrong cluster. 'up' and 'scan' register their local cluster themselves.

` + configHelp,
		Example: `  secureaudit cluster add aks-prod --agent rbac-agent.aks-prod.example.com:8441 \
      --environment prod --owner platform-team --criticality critical --schedule "0 2 * * *"
  secureaudit cluster list --label environment=prod
  secureaudit cluster get aks-prod
  secureaudit cluster remove aks-prod`,
	}
	cmd.AddCommand(newClusterAdd(), newClusterList(), newClusterGet(), newClusterRemove())
	return cmd
}

func newClusterAdd() *cobra.Command {
	var (
		f                        auditFlags
		c                        secureauditv1.Cluster
		env, owner, crit, output string
		labels                   []string
		replace                  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --agent HOST:PORT",
		Short: "Register a cluster and the rbac-agent that serves it",
		Long: `add registers a cluster. NAME is a DNS label (lower-case letters, digits and '-', at most 63)
and must be the name the cluster's rbac-agent presents (its -cluster flag). --agent-id is the
SPIFFE ID the agent's certificate carries (default: the rbac-agent's ID in this trust domain).
--schedule adds a schedule named after the cluster (cron in UTC, five fields or @daily).`,
		Example: `  secureaudit cluster add aks-prod --agent rbac-agent.aks-prod.example.com:8441 \
      --tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 \
      --aks-resource-id /subscriptions/SUB/resourceGroups/rg-prod/providers/Microsoft.ContainerService/managedClusters/aks-prod \
      --environment prod --owner platform-team --criticality critical --schedule "0 2 * * *" --retention-days 90`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c.Name = args[0]
			c.Labels = map[string]string{}
			for _, l := range []struct{ key, value string }{{"environment", env}, {"owner", owner}, {"criticality", crit}} {
				if l.value != "" {
					c.Labels[l.key] = l.value
				}
			}
			extra, err := parseLabels(labels)
			if err != nil {
				return err
			}
			maps.Copy(c.Labels, extra)
			if c.AgentSpiffeId == "" {
				c.AgentSpiffeId = identity.ID(identity.RBACAgent).String()
			}
			cl, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer cl.Close()
			resp, err := cl.Clusters().RegisterCluster(cmd.Context(), &secureauditv1.RegisterClusterRequest{Cluster: &c, Replace: replace})
			if err != nil {
				return fmt.Errorf("add cluster %s: %w", c.Name, err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp.GetCluster(), func(w io.Writer) error {
				return clusterTable(w, []*secureauditv1.Cluster{resp.GetCluster()})
			})
		},
	}
	f.registerConnection(cmd)
	fl := cmd.Flags()
	fl.StringVar(&c.AgentAddress, "agent", "", "address of the cluster's rbac-agent, host:port (required)")
	fl.StringVar(&c.AgentSpiffeId, "agent-id", "", "SPIFFE ID of the cluster's rbac-agent (default: the rbac-agent's ID in this trust domain)")
	fl.StringVar(&c.EntraTenantId, "tenant", "", "Entra tenant ID the cluster's identities live in")
	fl.StringVar(&c.AksResourceId, "aks-resource-id", "", "the AKS cluster's Azure resource ID")
	fl.StringVar(&env, "environment", "", "label environment (prod, staging, dev, ...)")
	fl.StringVar(&owner, "owner", "", "label owner (a team or person)")
	fl.StringVar(&crit, "criticality", "", "label criticality: low, medium, high or critical")
	fl.StringArrayVar(&labels, "label", nil, "another label, KEY=VALUE (repeatable)")
	fl.StringVar(&c.Schedule, "schedule", "", `audit the cluster on this cron schedule, in UTC: "0 2 * * *" or @daily`)
	fl.Uint32Var(&c.RetentionDays, "retention-days", 0, "with --schedule: delete the cluster's finished audits older than this many days (0 keeps them)")
	fl.BoolVar(&c.SkipDirectory, "skip-directory", false, "with --schedule: audit without resolving identities in Entra ID")
	fl.BoolVar(&replace, "replace", false, "replace a registration of the same name (its audits and other schedules stay)")
	_ = cmd.MarkFlagRequired("agent")
	outputFlag(cmd, &output)
	return cmd
}

func newClusterList() *cobra.Command {
	var (
		f      auditFlags
		labels []string
		output string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the registered clusters",
		Example: "  secureaudit cluster list\n  secureaudit cluster list --label environment=prod --label owner=platform-team -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			want, err := parseLabels(labels)
			if err != nil {
				return err
			}
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Clusters().ListClusters(cmd.Context(), &secureauditv1.ListClustersRequest{Labels: want})
			if err != nil {
				return fmt.Errorf("list clusters: %w", err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp, func(w io.Writer) error {
				return clusterTable(w, resp.GetClusters())
			})
		},
	}
	f.registerConnection(cmd)
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only clusters with this label, KEY=VALUE (repeatable: every one)")
	outputFlag(cmd, &output)
	return cmd
}

func newClusterGet() *cobra.Command {
	var (
		f      auditFlags
		output string
	)
	cmd := &cobra.Command{
		Use:     "get NAME",
		Short:   "Show a registered cluster and its latest audit",
		Example: "  secureaudit cluster get aks-prod\n  secureaudit cluster get aks-prod -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Clusters().GetCluster(cmd.Context(), &secureauditv1.GetClusterRequest{Name: args[0]})
			if err != nil {
				return fmt.Errorf("get cluster %s: %w", args[0], err)
			}
			return printMessage(cmd.OutOrStdout(), output, resp, func(w io.Writer) error {
				return clusterDetail(w, resp)
			})
		},
	}
	f.registerConnection(cmd)
	outputFlag(cmd, &output)
	return cmd
}

func newClusterRemove() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm", "delete"},
		Short:   "Deregister a cluster and remove its schedules; its audits stay",
		Example: "  secureaudit cluster remove aks-prod",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialOrchestrator(&f)
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Clusters().DeregisterCluster(cmd.Context(), &secureauditv1.DeregisterClusterRequest{Name: args[0]})
			if err != nil {
				return fmt.Errorf("remove cluster %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed cluster %s", args[0])
			if s := resp.GetRemovedSchedules(); len(s) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), " and its schedules %s", strings.Join(s, ", "))
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f.registerConnection(cmd)
	return cmd
}

// parseLabels reads KEY=VALUE flags.
func parseLabels(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range flags {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, usageError(fmt.Errorf("--label %q: want KEY=VALUE", l))
		}
		out[k] = v
	}
	return out, nil
}

func labelString(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}

func clusterTable(w io.Writer, all []*secureauditv1.Cluster) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tAGENT\tAGENT ID\tLABELS\tSCHEDULE")
	for _, c := range all {
		sched := c.GetSchedule()
		if sched == "" {
			sched = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.GetName(), c.GetAgentAddress(), c.GetAgentSpiffeId(), labelString(c.GetLabels()), sched)
	}
	return tw.Flush()
}

func clusterDetail(w io.Writer, resp *secureauditv1.GetClusterResponse) error {
	c := resp.GetCluster()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, v)
	}
	row("name", c.GetName())
	row("agent", c.GetAgentAddress())
	row("agent id", c.GetAgentSpiffeId())
	row("entra tenant", c.GetEntraTenantId())
	row("aks resource id", c.GetAksResourceId())
	row("labels", labelString(c.GetLabels()))
	row("schedule", c.GetSchedule())
	row("registered", c.GetRegisteredAt().AsTime().Format(time.RFC3339)+" by "+c.GetRegisteredBy())
	if err := tw.Flush(); err != nil {
		return err
	}
	if resp.GetLastAudit() == nil {
		_, err := fmt.Fprintln(w, "\nno audit yet: secureaudit audit --cluster "+c.GetName())
		return err
	}
	fmt.Fprintln(w, "\nlast audit:")
	return auditTable(w, []*secureauditv1.Audit{resp.GetLastAudit()})
}

// registerLocal registers the cluster a local stack's rbac-agent serves
// (up, scan), replacing an earlier registration of it (its address changes
// with every start). It returns what it did, for up to print; a name that
// is not a DNS label, or not known before the agent reports it, is not
// registered (audits use the stack's rbac-agent as before).
func registerLocal(ctx context.Context, st *stack.Stack, cfg stack.Config) (string, error) {
	name := cfg.LocalCluster()
	if name == "" {
		return "the local cluster is not registered: its name is known only to the rbac-agent (pass --cluster-name to register it)", nil
	}
	if !stack.ValidClusterName(name) {
		return fmt.Sprintf("the local cluster %q is not registered: a registered name is a DNS label (pass --cluster-name)", name), nil
	}
	c, err := client.Dial(st.Orchestrator(), st.PKIDir)
	if err != nil {
		return "", err
	}
	defer c.Close()
	addr := st.Addr(identity.RBACAgent)
	reg := &secureauditv1.Cluster{Name: name, AgentAddress: addr, AgentSpiffeId: identity.ID(identity.RBACAgent).String(),
		Labels: map[string]string{"environment": "local"}}
	// A registration from an earlier start keeps its labels and schedule,
	// with the agent's new address.
	prev, err := c.Clusters().GetCluster(ctx, &secureauditv1.GetClusterRequest{Name: name})
	switch {
	case err == nil:
		if prev.GetCluster().GetAgentAddress() == addr && prev.GetCluster().GetAgentSpiffeId() == reg.GetAgentSpiffeId() {
			return fmt.Sprintf("cluster %s is registered (rbac-agent at %s)", name, addr), nil
		}
		reg = prev.GetCluster()
		reg.AgentAddress, reg.AgentSpiffeId = addr, identity.ID(identity.RBACAgent).String()
		reg.RegisteredAt, reg.RegisteredBy = nil, ""
	case status.Code(err) != codes.NotFound:
		return "", fmt.Errorf("register the local cluster %s: %w", name, err)
	}
	if _, err := c.Clusters().RegisterCluster(ctx, &secureauditv1.RegisterClusterRequest{Replace: true, Cluster: reg}); err != nil {
		return "", fmt.Errorf("register the local cluster %s: %w", name, err)
	}
	return fmt.Sprintf("registered cluster %s (rbac-agent at %s)", name, addr), nil
}
