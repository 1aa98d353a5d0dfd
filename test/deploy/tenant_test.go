package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"secureaudit.dev/deploy/scopes"
	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/platform/identity"
	"secureaudit.dev/platform/pki"
	"secureaudit.dev/platform/rpc"
	"secureaudit.dev/platform/scope"
	"secureaudit.dev/platform/validation"
	"secureaudit.dev/test/harness"
)

// tenantValues are the chart values that give the objects of
// deploy/components/tenant-entra-agent (TestHelmMatchesKustomize).
var tenantValues = map[string]any{"entraAgent": map[string]any{"tenants": []any{map[string]any{
	"name": "fabrikam", "tenantID": "11111111-1111-1111-1111-111111111111", "clientID": "22222222-2222-2222-2222-222222222222",
}}}}

// asJSON gives objects as JSON decodes them (kustomize's maps hold Go ints,
// which the dynamic client's deep copy does not take).
func asJSON(t *testing.T, objs []object) []object {
	t.Helper()
	var out []object
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var d object
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

func sub(o object, path ...string) object {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	m, _ := cur.(map[string]any)
	return m
}

func list(o object, path ...string) []any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	l, _ := cur.([]any)
	return l
}

// selects reports whether a matchLabels selector selects a pod's labels.
func selects(matchLabels, labels object) bool {
	if len(matchLabels) == 0 {
		return false
	}
	for k, v := range matchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand resolves $(VAR) references in a container's arg or env value as
// the kubelet does: from the container's variables (those defined before
// index before, for an env value; all, for an arg), metadata.namespace
// from the pod's namespace. A reference it cannot resolve is an error
// (Kubernetes would leave it as written).
func expand(s string, env []any, before int, namespace string) (string, error) {
	vals := map[string]string{}
	for i, e := range env {
		if i >= before {
			break
		}
		e := object(e.(map[string]any))
		switch {
		case e.str("valueFrom", "fieldRef", "fieldPath") == "metadata.namespace":
			vals[e.str("name")] = namespace
		case sub(e, "valueFrom") == nil:
			vals[e.str("name")] = e.str("value")
		}
	}
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := varRef.FindStringSubmatch(ref)[1]
		v, ok := vals[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q refers to %v, not defined before it", s, missing)
	}
	return out, nil
}

// TestTenantEntraAgentComponent: the overlay with
// components/tenant-entra-agent adds tenant fabrikam's entra-agent under a
// ServiceAccount of its own, whose SPIFFE ID (as csi-driver-spiffe issues
// it, spiffe://<trust domain>/ns/<namespace>/sa/<ServiceAccount>) is the one
// the agent is started with and the one the orchestrator's
// -tenant-entra-agent requires for the tenant the ServiceAccount's workload
// identity names, at the address of the agent's Service; the Deployment is
// the base entra-agent's apart from its name, ServiceAccount, -live and its
// ID (same image, security contexts, probes, resources, volumes); its
// NetworkPolicy admits only the orchestrator on the agent's port, its egress
// is the base entra-agent's, and the orchestrator may reach it; the base
// entra-agent's Service, policy and budget do not select its pods nor its
// the base's. A real kube-apiserver accepts the objects (server-side
// dry-run) and the pods under the restricted Pod Security Standard.
func TestTenantEntraAgentComponent(t *testing.T) {
	rendered := renderKustomize(t, componentOverlay(t, "tenant-entra-agent"))
	objs := asJSON(t, rendered)
	k := byKey(t, objs, false)
	const ns, name = "secureaudit", "entra-agent-fabrikam"
	get := func(kind, n string) object {
		o := k[kind+" "+ns+"/"+n]
		if o == nil {
			t.Fatalf("no %s %s", kind, n)
		}
		return o
	}
	base, tenant := get("Deployment", "entra-agent"), get("Deployment", name)
	sa := get("ServiceAccount", name)
	if sa.str("automountServiceAccountToken") != "false" {
		t.Errorf("ServiceAccount %s mounts a token", name)
	}
	tenantID := sa.str("metadata", "annotations", "azure.workload.identity/tenant-id")
	if sa.str("metadata", "annotations", "azure.workload.identity/client-id") == "" || tenantID == "" {
		t.Errorf("ServiceAccount %s has no workload identity client and tenant ID: %v", name, sa["metadata"])
	}
	if tenantID == get("ServiceAccount", "entra-agent").str("metadata", "annotations", "azure.workload.identity/tenant-id") {
		t.Errorf("the tenant's agent has the base entra-agent's tenant %s", tenantID)
	}

	// The Deployment is the base entra-agent's but for what makes it the tenant's.
	want := asJSON(t, []object{base})[0]
	want["metadata"].(map[string]any)["name"] = name
	for _, l := range []object{sub(want, "metadata", "labels"), sub(want, "spec", "selector", "matchLabels"), sub(want, "spec", "template", "metadata", "labels")} {
		l["app.kubernetes.io/name"] = name
	}
	pod := sub(want, "spec", "template", "spec")
	pod["serviceAccountName"] = name
	c := object(list(pod, "containers")[0].(map[string]any))
	c["args"] = append(c["args"].([]any), "-live=true")
	var env []any
	for _, e := range c["env"].([]any) {
		env = append(env, e)
		if object(e.(map[string]any)).str("name") == "SECUREAUDIT_NAMESPACE" {
			env = append(env, map[string]any{"name": "SECUREAUDIT_SPIFFE_ID", "value": "spiffe://$(SECUREAUDIT_TRUST_DOMAIN)/ns/$(SECUREAUDIT_NAMESPACE)/sa/" + name})
		}
	}
	c["env"] = env
	if diff := cmp.Diff(want, tenant); diff != "" {
		t.Errorf("Deployment %s is not the base entra-agent's with its own name, ServiceAccount, -live and ID (-want +got):\n%s", name, diff)
	}

	// Its own SPIFFE ID: the one issued for its ServiceAccount, not the default entra-agent's.
	tpod := sub(tenant, "spec", "template", "spec")
	tc := object(list(tpod, "containers")[0].(map[string]any))
	var ownID string
	for i, e := range list(tc, "env") {
		if e := object(e.(map[string]any)); e.str("name") == "SECUREAUDIT_SPIFFE_ID" {
			v, err := expand(e.str("value"), list(tc, "env"), i, tenant.str("metadata", "namespace"))
			if err != nil {
				t.Fatalf("SECUREAUDIT_SPIFFE_ID: %v", err)
			}
			ownID = v
		}
	}
	issued := fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", identity.TrustDomain, tenant.str("metadata", "namespace"), tpod.str("serviceAccountName"))
	if ownID != issued {
		t.Errorf("the agent is started with SPIFFE ID %q, but csi-driver-spiffe issues %s for its ServiceAccount", ownID, issued)
	}
	if ownID == identity.ID(identity.EntraAgent).String() || ownID == identity.ID(get("Deployment", "entra-agent").str("spec", "template", "spec", "serviceAccountName")).String() {
		t.Errorf("the tenant's agent carries the default entra-agent's ID %s", ownID)
	}

	// The orchestrator requires that ID for the ServiceAccount's tenant, at the agent's Service.
	orch := get("Deployment", "orchestrator")
	oc := object(list(orch, "spec", "template", "spec", "containers")[0].(map[string]any))
	var entries []string
	for _, a := range list(oc, "args") {
		if v, ok := strings.CutPrefix(a.(string), "-tenant-entra-agent="); ok {
			x, err := expand(v, list(oc, "env"), len(list(oc, "env")), orch.str("metadata", "namespace"))
			if err != nil {
				t.Fatalf("-tenant-entra-agent: %v", err)
			}
			entries = append(entries, x)
		}
	}
	if len(entries) != 1 {
		t.Fatalf("orchestrator -tenant-entra-agent entries %v, want one", entries)
	}
	tenantOf, rest, _ := strings.Cut(entries[0], "=")
	addr, id, _ := strings.Cut(rest, ",")
	if tenantOf != tenantID {
		t.Errorf("-tenant-entra-agent names tenant %s, the agent's workload identity tenant %s", tenantOf, tenantID)
	}
	if id != ownID {
		t.Errorf("-tenant-entra-agent requires %q, the agent's ID is %s", id, ownID)
	}
	if _, err := identity.Parse(id); err != nil {
		t.Errorf("-tenant-entra-agent: %v", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	svc := get("Service", host)
	if !selects(sub(svc, "spec", "selector"), sub(tenant, "spec", "template", "metadata", "labels")) {
		t.Errorf("Service %s does not select the tenant's agent", host)
	}
	grpcPort := ""
	for _, p := range list(tc, "ports") {
		if p := object(p.(map[string]any)); p.str("name") == "grpc" {
			grpcPort = p.str("containerPort")
		}
	}
	sp := object(list(svc, "spec", "ports")[0].(map[string]any))
	if sp.str("port") != port || sp.str("targetPort") != "grpc" || grpcPort == "" {
		t.Errorf("-tenant-entra-agent port %s; Service port %s to %s; container grpc port %q", port, sp.str("port"), sp.str("targetPort"), grpcPort)
	}

	// Selectors: the tenant's objects select its pods only, the base's not them.
	tenantLabels, baseLabels := sub(tenant, "spec", "template", "metadata", "labels"), sub(base, "spec", "template", "metadata", "labels")
	orchLabels := sub(orch, "spec", "template", "metadata", "labels")
	for _, x := range []struct {
		kind, name string
		path       []string
		tenant     bool
	}{
		{"Service", name, []string{"spec", "selector"}, true},
		{"PodDisruptionBudget", name, []string{"spec", "selector", "matchLabels"}, true},
		{"NetworkPolicy", name, []string{"spec", "podSelector", "matchLabels"}, true},
		{"Service", "entra-agent", []string{"spec", "selector"}, false},
		{"PodDisruptionBudget", "entra-agent", []string{"spec", "selector", "matchLabels"}, false},
		{"NetworkPolicy", "entra-agent", []string{"spec", "podSelector", "matchLabels"}, false},
	} {
		sel := sub(get(x.kind, x.name), x.path...)
		if selects(sel, tenantLabels) != x.tenant || selects(sel, baseLabels) == x.tenant {
			t.Errorf("%s %s selects %v: the tenant's pods %v, the base entra-agent's %v", x.kind, x.name, sel, selects(sel, tenantLabels), selects(sel, baseLabels))
		}
	}

	// NetworkPolicies pair up: the orchestrator may call the agent's port, and only it may.
	np := get("NetworkPolicy", name)
	if got := np.str("spec", "policyTypes"); !strings.Contains(got, "Ingress") || !strings.Contains(got, "Egress") {
		t.Errorf("NetworkPolicy %s policyTypes %s", name, got)
	}
	ingress := list(np, "spec", "ingress")
	if len(ingress) != 1 {
		t.Fatalf("NetworkPolicy %s has %d ingress rules, want 1", name, len(ingress))
	}
	in := object(ingress[0].(map[string]any))
	from := list(in, "from")
	if len(from) != 1 || !selects(sub(object(from[0].(map[string]any)), "podSelector", "matchLabels"), orchLabels) || sub(object(from[0].(map[string]any)), "namespaceSelector") != nil {
		t.Errorf("NetworkPolicy %s admits %v, want the orchestrator's pods only", name, from)
	}
	if p := object(list(in, "ports")[0].(map[string]any)); p.str("port") != grpcPort || len(list(in, "ports")) != 1 {
		t.Errorf("NetworkPolicy %s admits ports %v, want %s only", name, list(in, "ports"), grpcPort)
	}
	if diff := cmp.Diff(list(get("NetworkPolicy", "entra-agent"), "spec", "egress"), list(np, "spec", "egress")); diff != "" {
		t.Errorf("NetworkPolicy %s egress is not the base entra-agent's (-base +tenant):\n%s", name, diff)
	}
	oe := get("NetworkPolicy", "orchestrator-"+name)
	if !selects(sub(oe, "spec", "podSelector", "matchLabels"), orchLabels) || oe.str("spec", "policyTypes") != "- Egress" {
		t.Errorf("NetworkPolicy orchestrator-%s is not an egress policy of the orchestrator: %v", name, oe["spec"])
	}
	reaches := false
	for _, r := range list(oe, "spec", "egress") {
		r := object(r.(map[string]any))
		for _, to := range list(r, "to") {
			if selects(sub(object(to.(map[string]any)), "podSelector", "matchLabels"), tenantLabels) && strings.Contains(r.str("ports"), "port: "+grpcPort) {
				reaches = true
			}
		}
	}
	if !reaches {
		t.Errorf("the orchestrator may not reach the tenant's agent on %s: %v", grpcPort, oe["spec"])
	}
	for x, o := range k {
		if o.str("kind") == "NetworkPolicy" && x != "NetworkPolicy "+ns+"/"+name && x != "NetworkPolicy "+ns+"/default-deny" &&
			selects(sub(o, "spec", "podSelector", "matchLabels"), tenantLabels) {
			t.Errorf("%s also applies to the tenant's agent", x)
		}
	}

	n := submit(t, server(t), objs, false)
	if n < len(objs) {
		t.Errorf("the API server accepted %d of %d objects", n, len(objs))
	}
}

// TestHelmTenantValues: entraAgent.tenants entries are checked at render
// time, naming the entry; clusterResourceID reaches the agent.
func TestHelmTenantValues(t *testing.T) {
	tenants := func(entries ...map[string]any) map[string]any {
		var l []any
		for _, e := range entries {
			l = append(l, e)
		}
		return map[string]any{"entraAgent": map[string]any{"tenants": l}}
	}
	ok := map[string]any{"name": "fabrikam", "tenantID": "11111111-1111-1111-1111-111111111111", "clientID": "c"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"name not a DNS label", tenants(with("name", "Fabrikam_1")), "entraAgent.tenants[0].name"},
		{"tenant not a UUID", tenants(with("tenantID", "fabrikam.onmicrosoft.com")), "entraAgent.tenants[0].tenantID"},
		{"no client ID", tenants(with("clientID", "")), "entraAgent.tenants[0].clientID"},
		{"tenant twice", tenants(ok, with("name", "contoso")), "entraAgent.tenants[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderHelm(t, "secureaudit", tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	aks := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-f"
	contoso := with("name", "contoso")
	contoso["tenantID"] = "33333333-3333-3333-3333-333333333333"
	objs := mustRenderHelm(t, "security-tools", tenants(with("clusterResourceID", aks), contoso))
	for n, want := range map[string]bool{"fabrikam": true, "contoso": false} {
		d := deploymentsOf(objs)["entra-agent-"+n]
		if d == nil {
			t.Fatalf("no Deployment entra-agent-%s", n)
		}
		if args := containerOf(d).str("args"); strings.Contains(args, "-cluster-resource-id="+aks) != want {
			t.Errorf("entra-agent-%s args %s: -cluster-resource-id given %v", n, args, want)
		}
	}
	if args := containerOf(deploymentsOf(objs)["orchestrator"]).str("args"); strings.Count(args, "-tenant-entra-agent=") != 2 ||
		!strings.Contains(args, "-tenant-entra-agent=33333333-3333-3333-3333-333333333333=entra-agent-contoso:8442,spiffe://$(SECUREAUDIT_TRUST_DOMAIN)/ns/$(SECUREAUDIT_NAMESPACE)/sa/entra-agent-contoso") {
		t.Errorf("orchestrator args %s, want one -tenant-entra-agent per tenant", args)
	}
}

// TestTenantEntraAgentProcess runs the component's entra-agent as the
// kubelet would run its container (the env as rendered, $(VAR) references
// and metadata.namespace resolved; a certificate for its ServiceAccount as
// csi-driver-spiffe issues it, spiffe://<trust domain>/ns/<namespace>/sa/<ServiceAccount>,
// at the mounted paths) with two changes: loopback listen addresses, and
// -live=true replaced by -directory with the example directory snapshot (no
// Entra tenant here). It starts, and a client holding the orchestrator's
// certificate, requiring the SPIFFE ID the orchestrator's -tenant-entra-agent
// entry names (expanded from the orchestrator container's env), sees the
// entra-agent's built-in scope manifest digest (the one an approval of
// entra-agent names) and resolves a principal: the agent's caller policy
// admits the orchestrator. A client requiring the default entra-agent ID is
// refused at the handshake.
func TestTenantEntraAgentProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the entra-agent (-short)")
	}
	root := t.TempDir()
	binDir, err := harness.Binaries(root)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k := byKey(t, asJSON(t, renderKustomize(t, componentOverlay(t, "tenant-entra-agent"))), false)
	d, orch := k["Deployment secureaudit/entra-agent-fabrikam"], k["Deployment secureaudit/orchestrator"]
	if d == nil || orch == nil {
		t.Fatal("no Deployment entra-agent-fabrikam or orchestrator")
	}
	ns := d.str("metadata", "namespace")
	pod := sub(d, "spec", "template", "spec")
	c := object(list(pod, "containers")[0].(map[string]any))

	// The CA plays csi-driver-spiffe: each certificate is for a ServiceAccount.
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mount := ""
	for _, m := range list(c, "volumeMounts") {
		if m := object(m.(map[string]any)); m.str("name") == "spiffe" {
			mount = m.str("mountPath")
		}
	}
	certDir := filepath.Join(root, "spiffe")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pod.str("serviceAccountName"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": ca.CertPEM()} {
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	env := []string{"HOME=" + root}
	for i, e := range list(c, "env") {
		e := object(e.(map[string]any))
		if e.str("name") == "GOMEMLIMIT" {
			continue
		}
		v := e.str("value")
		if e.str("valueFrom", "fieldRef", "fieldPath") == "metadata.namespace" {
			v = ns
		} else if sub(e, "valueFrom") != nil {
			t.Fatalf("env %s: a source this test does not provide", e.str("name"))
		}
		v, err := expand(v, list(c, "env"), i, ns)
		if err != nil {
			t.Fatal(err)
		}
		if mount != "" && strings.HasPrefix(v, mount+"/") {
			v = certDir + strings.TrimPrefix(v, mount)
		}
		env = append(env, e.str("name")+"="+v)
	}
	addrFile := filepath.Join(root, "addr")
	args := []string{"-addr-file=" + addrFile}
	for _, a := range list(c, "args") {
		switch a := a.(string); {
		case strings.HasPrefix(a, "-listen="), strings.HasPrefix(a, "-health-listen="):
			args = append(args, a[:strings.IndexByte(a, '=')+1]+"127.0.0.1:0")
		case a == "-live=true":
			args = append(args, "-directory="+filepath.Join(repo, "examples", "directory.json"))
		default:
			args = append(args, a)
		}
	}
	log := &syncBuffer{}
	cmd := exec.Command(filepath.Join(binDir, "entra-agent"), args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == ""; {
		select {
		case <-exited:
			t.Fatalf("entra-agent exited: %v\n%s", waitErr, log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if data, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(data))
		}
		if time.Now().After(deadline) {
			t.Fatalf("entra-agent did not listen in 30s:\n%s", log.String())
		}
	}

	// The orchestrator's side: its certificate, the ID its entry requires.
	oc := object(list(orch, "spec", "template", "spec", "containers")[0].(map[string]any))
	var required string
	for _, a := range list(oc, "args") {
		if v, ok := strings.CutPrefix(a.(string), "-tenant-entra-agent="); ok {
			x, err := expand(v, list(oc, "env"), len(list(oc, "env")), orch.str("metadata", "namespace"))
			if err != nil {
				t.Fatal(err)
			}
			_, required, _ = strings.Cut(x, ",")
		}
	}
	orchDir := filepath.Join(root, "orchestrator")
	if err := os.Mkdir(orchDir, 0o700); err != nil {
		t.Fatal(err)
	}
	oCert, oKey, err := ca.Issue(orch.str("spec", "template", "spec", "serviceAccountName"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	files := pki.Paths(orchDir, identity.Orchestrator)
	for path, data := range map[string][]byte{files.Cert: oCert, files.Key: oKey, files.CA: ca.CertPEM()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	creds, err := rpc.LoadCredentials(files)
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	v, err := validation.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(server string) *grpc.ClientConn {
		id, err := identity.Parse(server)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := rpc.Dial(addr, id, rpc.ClientConfig{Credentials: creds, Validator: v})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := dial(required)
	var md metadata.MD
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md)); err != nil {
		t.Fatalf("health check requiring %s: %v\n%s", required, err, log.String())
	}
	builtin, err := scopes.Manifest(identity.EntraAgent)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scope.Parse(builtin)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := rpc.ScopeFromHeader(md); p.Name != identity.EntraAgent || p.Digest != m.Digest() {
		t.Errorf("the tenant's agent presents %+v, want entra-agent's built-in manifest %s", p, m.Digest())
	}
	stream, err := secureauditv1.NewEntraServiceClient(conn).Resolve(ctx, &secureauditv1.ResolveRequest{
		AuditId:    "6b0f9c3e-1d2a-4e5f-8a9b-0c1d2e3f4a5b",
		Principals: []*secureauditv1.Principal{{Kind: secureauditv1.PrincipalKind_PRINCIPAL_KIND_USER, Name: "carol.ops@fabrikamcorp.onmicrosoft.com"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("Resolve as the orchestrator: %v\n%s", err, log.String())
	}
	if resp.GetChunk().GetTenantId() != "38da03cf-8908-4b39-8df4-f889b1020287" || len(resp.GetChunk().GetUsers()) == 0 {
		t.Errorf("Resolve answered %v, want the example tenant's user", resp.GetChunk())
	}
	if _, err := healthpb.NewHealthClient(dial(identity.ID(identity.EntraAgent).String())).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a client requiring the default entra-agent ID reached the tenant's agent")
	}
}
