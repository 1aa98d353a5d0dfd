package command

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/services/rbac-agent/collect"
	"secureaudit.dev/services/risk-agent/access"
	"secureaudit.dev/services/risk-agent/discovery"
	"secureaudit.dev/services/risk-agent/snapshot"
)

// accessFlags are the flags of who-can and can-i.
type accessFlags struct {
	snapshot    string
	directory   string
	namespace   string
	subresource string
}

func (f *accessFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.snapshot, "snapshot", "", "file or directory of Kubernetes objects (kubectl get -o yaml|json output)")
	fl.StringVar(&f.directory, "directory", "", "directory snapshot (entra export, examples/directory.json): adds the grants through Azure on AKS (admin groups, credential and runCommand roles with local accounts, Azure RBAC for Kubernetes data actions at cluster and namespace scope)")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the request (default: cluster-wide, all namespaces)")
	fl.StringVar(&f.subresource, "subresource", "", "subresource of the request, as kubectl auth can-i --subresource (same as RESOURCE/SUBRESOURCE)")
	_ = cmd.MarkFlagRequired("snapshot")
}

// engine reads the snapshot with the rbac-agent's file source and builds
// the access engine over it, as the risk-agent would see it, with the
// resources requests are read against: the snapshot's discovery when it has
// one, else the built-in resources of the captured API server version.
func (f *accessFlags) engine(cmd *cobra.Command) (*access.Engine, *discovery.Table, error) {
	v, err := validation.New(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	abs, err := filepath.Abs(f.snapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("--snapshot: %w", err)
	}
	name := collect.SanitizeCluster(strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs)))
	snap, err := collect.NewFiles(f.snapshot, name, v).Load(cmd.Context())
	if err != nil {
		return nil, nil, err
	}
	s := snapshot.Build(snap.Chunks(collect.MaxChunkObjects), nil)
	if f.directory == "" {
		return access.New(s), discovery.For(s.Header()), nil
	}
	dir, err := loadDirectory(f.directory, v)
	if err != nil {
		return nil, nil, err
	}
	return access.NewWithAzure(s, access.AzureGrants(access.WithoutDenied(dir))), discovery.For(s.Header()), nil
}

// loadDirectory reads a directory snapshot file (the protojson of
// secureaudit.v1.DirectorySnapshot, checked against its protovalidate
// rules) as the one directory chunk the access engine reads its Azure
// grants from. The grants come from the routes and permissions the file's
// role assignments carry, as entra export writes them, less what its deny
// assignments block (access.WithoutDenied).
func loadDirectory(path string, v *validation.Validator) ([]*secureauditv1.DirectoryChunk, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--directory: %w", err)
	}
	var snap secureauditv1.DirectorySnapshot
	if err := protojson.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("--directory %s: %w", path, err)
	}
	if err := v.Validate(&snap); err != nil {
		return nil, fmt.Errorf("--directory %s: %w", path, err)
	}
	return []*secureauditv1.DirectoryChunk{{
		Users: snap.GetUsers(), Groups: snap.GetGroups(), ServicePrincipals: snap.GetServicePrincipals(),
		RoleAssignments: snap.GetRoleAssignments(), AksCluster: snap.GetAksCluster(), DenyAssignments: snap.GetDenyAssignments(),
	}}, nil
}

// request parses VERB RESOURCE [NAME] with the table.
func (f *accessFlags) request(t *discovery.Table, args []string) (access.Attributes, error) {
	name := ""
	if len(args) == 3 {
		name = args[2]
	}
	resource := args[1]
	if f.subresource != "" {
		if strings.HasPrefix(resource, "/") || strings.Contains(resource, "/") {
			return access.Attributes{}, usageError(fmt.Errorf("--subresource %s with %s: give the subresource once", f.subresource, resource))
		}
		resource += "/" + f.subresource
	}
	a, err := access.ParseRequest(t, args[0], resource, f.namespace, name)
	if err != nil {
		if _, sub, ok := strings.Cut(resource, "/"); ok && errors.Is(err, discovery.ErrUnknown) && !strings.HasPrefix(resource, "/") {
			err = fmt.Errorf("%w\n(kubectl reads TYPE/NAME; here the object name is the third argument: %s %s NAME)", err, args[0], strings.TrimSuffix(resource, "/"+sub))
		}
		return access.Attributes{}, usageError(err)
	}
	return a, nil
}

const resourceHelp = `RESOURCE is read as kubectl auth can-i reads it, against the snapshot's
discovery (a live collection) or the built-in resources of kube-apiserver
` + "%s" + ` otherwise: a plural (pods), singular (pod) or short name (po),
with a group (deployments.apps, storageclasses.storage for storage.k8s.io)
or a version and group (ingresses.v1.networking.k8s.io); a name several
groups serve resolves as kubectl resolves it (the core group first). '*' is
every resource. RESOURCE/SUBRESOURCE (pods/exec, deployments.apps/scale) or
--subresource names a subresource; unlike kubectl, which reads TYPE/NAME,
the object name is the third argument. An unknown resource or subresource
is an error listing the nearest names, never a guess. A cluster-scoped
resource is asked without a namespace, whatever -n says. A RESOURCE
starting with '/' is a non-resource URL such as /metrics.`

func resourceHelpText() string { return fmt.Sprintf(resourceHelp, discovery.BuiltinVersion()) }

func newWhoCan() *cobra.Command {
	var f accessFlags
	cmd := &cobra.Command{
		Use:   "who-can VERB RESOURCE [NAME] --snapshot PATH",
		Short: "List the subjects allowed a request, from a snapshot (no cluster needed)",
		Long: `who-can lists every User, Group and ServiceAccount that a binding allows to make a
request, with the binding, as the Kubernetes RBAC authorizer would decide it:
aggregated ClusterRoles are resolved from their label selectors, a RoleBinding
counts only in its namespace, resourceNames restrict by object name.

` + resourceHelpText() + `

Members of the listed groups are allowed too (system:authenticated is every
authenticated user), and members of system:masters are allowed everything.

With --directory, the grants through Azure on AKS are listed beside the
bindings: members of the cluster's admin groups, holders of
listClusterAdminCredential or runCommand while local accounts are enabled,
and Azure RBAC for Kubernetes role assignments (data actions mapped to verbs
and resources; a namespace-scoped assignment counts only in its namespace).
Eligible assignments of Privileged Identity Management are listed too, as
"eligible Azure role assignment (PIM, activation needed)": they allow
nothing until activated (can-i answers no and names them).`,
		Example: "  secureaudit who-can get secrets -n kube-system --snapshot examples/cluster\n" +
			"  secureaudit who-can create pods/exec --snapshot examples/cluster\n" +
			"  secureaudit who-can create pods/exec -n payments --snapshot examples/cluster --directory examples/directory.json",
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, t, err := f.engine(cmd)
			if err != nil {
				return err
			}
			a, err := f.request(t, args)
			if err != nil {
				return err
			}
			return printMatches(cmd.OutOrStdout(), e.WhoCan(a))
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

--as and --as-group mean what they mean to kubectl: the identity is the one
the API server's impersonation gives. --as system:serviceaccount:NAMESPACE:NAME
(a DNS label namespace and a DNS subdomain name; anything else, such as
system:serviceaccount:a:b:c, is a plain user name) is a ServiceAccount in the
groups system:serviceaccounts and system:serviceaccounts:NAMESPACE, but only
when no --as-group is given: with --as-group it is in exactly the groups
given. Every user is also in system:authenticated unless the groups hold
system:authenticated or system:unauthenticated (system:anonymous is in
system:unauthenticated). A real ServiceAccount token always carries both
ServiceAccount groups. --as-group without --as (which kubectl refuses) asks
for what the groups alone are granted.

` + resourceHelpText(),
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
			e, t, err := f.engine(cmd)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if list {
				return printPermissions(w, e.Permissions(id), f.namespace)
			}
			a, err := f.request(t, args)
			if err != nil {
				return err
			}
			d := e.Allowed(id, a)
			if !d.Allowed {
				fmt.Fprintln(w, "no")
			} else {
				fmt.Fprintln(w, "yes")
			}
			if d.Privileged {
				fmt.Fprintln(w, "  as a member of system:masters")
			}
			for _, b := range d.Bindings {
				fmt.Fprintf(w, "  via %s\n", b)
			}
			// Eligible assignments (PIM) allow it only once activated.
			for _, b := range d.Eligible {
				fmt.Fprintf(w, "  once activated, via %s\n", b)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&as, "as", "", "user name, or system:serviceaccount:NAMESPACE:NAME (as kubectl --as)")
	cmd.Flags().StringArrayVar(&groups, "as-group", nil, "group the user is in (repeatable; as kubectl --as-group: replaces a ServiceAccount's groups)")
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
