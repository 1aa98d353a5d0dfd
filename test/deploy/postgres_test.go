package deploy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestPostgresComponent: the overlay with components/postgres runs three
// orchestrator replicas rolled one at a time, the database URL from a
// Secret in the environment (no -db argument, nothing on the command line),
// the evidence key from a Secret mounted read-only with mode 0440 as the
// orchestrator's -evidence-key, no volume claim, and egress to the database
// port; a real kube-apiserver accepts the objects (server-side dry-run) and
// the pod under the restricted Pod Security Standard.
func TestPostgresComponent(t *testing.T) {
	objs := renderKustomize(t, componentOverlay(t, "postgres"))
	o := deploymentsOf(objs)["orchestrator"]
	if o == nil {
		t.Fatal("no orchestrator Deployment")
	}
	if o.str("spec", "replicas") != "3" || o.str("spec", "strategy", "type") != "RollingUpdate" {
		t.Errorf("replicas %s strategy %q, want 3 and RollingUpdate", o.str("spec", "replicas"), o.str("spec", "strategy", "type"))
	}
	c := containerOf(o)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	if !slices.Contains(args, "-evidence-key=/etc/secureaudit/evidence/evidence.key") {
		t.Errorf("args %v have no -evidence-key of the mounted Secret", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-db") {
			t.Errorf("args %v still name a database (%s): the URL comes from the Secret", args, a)
		}
	}
	dbFromSecret := false
	for _, e := range c["env"].([]any) {
		e := object(e.(map[string]any))
		if e.str("name") == "SECUREAUDIT_DB" {
			dbFromSecret = e.str("valueFrom", "secretKeyRef", "name") == "secureaudit-database" && e.str("valueFrom", "secretKeyRef", "key") == "url" && e.str("value") == ""
		}
	}
	if !dbFromSecret {
		t.Errorf("SECUREAUDIT_DB is not taken from the Secret secureaudit-database, key url: %v", c["env"])
	}
	pod := object(o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any))
	var keyVolume object
	for _, v := range pod["volumes"].([]any) {
		v := object(v.(map[string]any))
		if v.str("name") == "data" || v.str("persistentVolumeClaim") != "" {
			t.Errorf("volume %v left: the replicas share no volume", v)
		}
		if v.str("name") == "evidence-key" {
			keyVolume = v
		}
	}
	if keyVolume.str("secret", "secretName") != "secureaudit-evidence-key" || keyVolume.str("secret", "defaultMode") != "288" {
		t.Errorf("evidence key volume %v, want the Secret secureaudit-evidence-key with defaultMode 0440", keyVolume)
	}
	mounted := false
	for _, m := range c["volumeMounts"].([]any) {
		m := object(m.(map[string]any))
		if m.str("name") == "evidence-key" {
			mounted = m.str("mountPath") == "/etc/secureaudit/evidence" && m.str("readOnly") == "true"
		}
	}
	if !mounted {
		t.Errorf("the evidence key is not mounted read-only at /etc/secureaudit/evidence: %v", c["volumeMounts"])
	}
	egress := false
	for _, x := range objs {
		switch key(x) {
		case "PersistentVolumeClaim secureaudit/orchestrator-data":
			t.Error("the volume claim is still there")
		case "NetworkPolicy secureaudit/orchestrator-database":
			egress = strings.Contains(x.str("spec", "egress"), "port: 5432")
		}
	}
	if !egress {
		t.Error("no NetworkPolicy orchestrator-database allowing egress to port 5432")
	}

	// As JSON decodes them (kustomize's maps hold Go ints, which the
	// dynamic client's deep copy does not take).
	var decoded []object
	for _, o := range objs {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		var d object
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, d)
	}
	n := submit(t, server(t), decoded, false)
	if n < len(objs) {
		t.Errorf("the API server accepted %d of %d objects", n, len(objs))
	}
}
