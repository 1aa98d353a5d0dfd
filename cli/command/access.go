package command

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// accessFlags are the flags of who-can and can-i.
type accessFlags struct {
	snapshot  string
	namespace string
}

func (f *accessFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.snapshot, "snapshot", "", "file or directory of Kubernetes objects (kubectl get -o yaml|json output)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the request (default: cluster-wide, all namespaces)")
	_ = cmd.MarkFlagRequired("snapshot")
}

// engine reads the snapshot with the rbac-agent's file source and builds
// the access engine over it, as the risk-agent would see it.
func (f *accessFlags) engine(cmd *cobra.Command) (*access.Engine, error) {
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(f.snapshot)
	if err != nil {
		return nil, fmt.Errorf("--snapshot: %w", err)
	}
	name := collect.SanitizeCluster(strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)))
	snap, err := collect.NewFiles(f.snapshot, name, v).Load(cmd.Context())
	if err != nil {
		return nil, err
	}
	return access.New(snapshot.Build(snap.Chunks(collect.MaxChunkObjects), nil)), nil
}

// request parses VERB RESOURCE [NAME].
func (f *accessFlags) request(args []string) access.Attributes {
	name := ""
	if len(args) == 3 {
		name = args[2]
	}
	return access.Request(args[0], args[1], f.namespace, name)
}

const resourceHelp = `RESOURCE is written as kubectl writes it: pods, pods/log, deployments (built-in
resources get their API group), deployments.apps/scale, widgets.example.com; a
RESOURCE starting with '/' is a non-resource URL such as /metrics.`

func newWhoCan() *cobra.Command {
	var f accessFlags
	cmd := &cobra.Command{
		Use:   "who-can VERB RESOURCE [NAME] --snapshot PATH",
		Short: "List the subjects allowed a request, from a snapshot (no cluster needed)",
		Long: `who-can lists every User, Group and ServiceAccount that a binding allows to make a
request, with the binding, as the Kubernetes RBAC authorizer would decide it:
aggregated ClusterRoles are resolved from their label selectors, a RoleBinding
counts only in its namespace, resourceNames restrict by object name.

` + resourceHelp + `

Members of the listed groups are allowed too (system:authenticated is every
authenticated user), and members of system:masters are allowed everything.`,
		Example: "  secureaudit who-can get secrets -n kube-system --snapshot examples/cluster\n" +
			"  secureaudit who-can create pods/exec --snapshot examples/cluster",
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := f.engine(cmd)
			if err != nil {
				return err
			}
			return printMatches(cmd.OutOrStdout(), e.WhoCan(f.request(args)))
		},
	}
	f.register(cmd)
	return cmd
}

func printMatches(w io.Writer, matches []access.Match) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSUBJECT\tBINDING")
	for _, m := range matches {
		name := m.Subject.GetName()
		if m.Subject.GetKind() == secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT {
			name = m.Subject.GetNamespace() + "/" + name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", subjectKind(m.Subject.GetKind()), name, m.Binding)
	}
	if len(matches) == 0 {
		fmt.Fprintln(tw, "(none)\t\t")
	}
	fmt.Fprintln(tw, "Group\tsystem:masters\t(always allowed; not governed by RBAC)")
	return tw.Flush()
}

func subjectKind(k secureauditv1.SubjectKind) string {
	switch k {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		return "User"
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "Group"
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "ServiceAccount"
	}
	return k.String()
}

func newCanI() *cobra.Command {
	var (
		f      accessFlags
		as     string
		groups []string
		list   bool
	)
	cmd := &cobra.Command{
		Use:   "can-i --as SUBJECT (VERB RESOURCE [NAME] | --list) --snapshot PATH",
		Short: "Decide whether a subject may make a request, from a snapshot (no cluster needed)",
		Long: `can-i answers yes or no for a request by a user, as the Kubernetes RBAC authorizer
would, and names the bindings that allow it. With --list it prints the subject's
effective permissions instead.

--as is a user name; system:serviceaccount:NAMESPACE:NAME is a ServiceAccount,
which is in the groups system:serviceaccounts and system:serviceaccounts:NAMESPACE.
Users are in system:authenticated (system:anonymous in system:unauthenticated)
and in the groups given with --as-group. --as-group without --as asks for what
the groups alone are granted.

` + resourceHelp,
		Example: "  secureaudit can-i --as system:serviceaccount:kube-system:default get secrets -n kube-system --snapshot examples/cluster\n" +
			"  secureaudit can-i --as alice@example.com --as-group oncall --list --snapshot examples/cluster",
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.RangeArgs(2, 3)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if as == "" && len(groups) == 0 {
				return fmt.Errorf("--as or --as-group is required")
			}
			id := access.Identity{Groups: groups}
			if as != "" {
				id = access.ForUser(as, groups...)
			}
			e, err := f.engine(cmd)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if list {
				return printPermissions(w, e.Permissions(id), f.namespace)
			}
			d := e.Allowed(id, f.request(args))
			if !d.Allowed {
				fmt.Fprintln(w, "no")
				return nil
			}
			fmt.Fprintln(w, "yes")
			if d.Privileged {
				fmt.Fprintln(w, "  as a member of system:masters")
			}
			for _, b := range d.Bindings {
				fmt.Fprintf(w, "  via %s\n", b)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&as, "as", "", "user name, or system:serviceaccount:NAMESPACE:NAME")
	cmd.Flags().StringArrayVar(&groups, "as-group", nil, "group the user is in (repeatable)")
	cmd.Flags().BoolVar(&list, "list", false, "print the subject's effective permissions")
	return cmd
}

// printPermissions prints grants, keeping only those that hold in namespace
// when one is given.
func printPermissions(w io.Writer, grants []access.Grant, namespace string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tVERB\tRESOURCE\tNAME\tBINDINGS")
	for _, g := range grants {
		if namespace != "" && g.Namespace != "" && g.Namespace != namespace {
			continue
		}
		ns := g.Namespace
		if ns == "" {
			ns = "*"
		}
		res := g.NonResourceURL
		if res == "" {
			res = g.Resource
			if g.APIGroup != "" {
				res += "." + g.APIGroup
			}
			if g.Subresource != "" {
				res += "/" + g.Subresource
			}
		}
		var via []string
		for _, b := range g.Bindings {
			via = append(via, b.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ns, g.Verb, res, g.ResourceName, strings.Join(via, "; "))
	}
	return tw.Flush()
}
