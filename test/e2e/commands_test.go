package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"secureaudit.dev/services/report-agent/render"
)

// TestExampleCommandsRun: every line of every command block of the bundled
// example's report.md is one kubectl or az invocation that runs as written
// (render.Runnable, split with render.ShellWords), and a kubectl command
// that edits, patches, deletes, annotates or labels an object names one the
// example cluster defines (kind and name, in its namespace).
func TestExampleCommandsRun(t *testing.T) {
	_, out, _ := runExampleAudit(t, "md")
	doc, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := exampleObjects(t)
	for _, k := range []string{"ClusterRoleBinding//platform-ops-full", "Role/payments/batch-operator", "ServiceAccount/ci/github-deployer"} {
		if !defined[k] {
			t.Fatalf("the example's objects were not read: %s missing", k)
		}
	}
	kinds := map[string]string{"role": "Role", "rolebinding": "RoleBinding", "clusterrole": "ClusterRole",
		"clusterrolebinding": "ClusterRoleBinding", "serviceaccount": "ServiceAccount", "sa": "ServiceAccount"}
	lines := 0
	fence := ""
	for line := range strings.SplitSeq(string(doc), "\n") {
		switch {
		case fence == "" && strings.HasPrefix(line, "```") && strings.HasSuffix(line, "sh"):
			fence = strings.TrimSuffix(line, "sh")
			continue
		case fence != "" && line == fence:
			fence = ""
			continue
		case fence == "":
			continue
		}
		lines++
		if !render.Runnable(line) {
			t.Errorf("command block line %q does not run as written", line)
			continue
		}
		words, _ := render.ShellWords(line)
		if words[0] != "kubectl" {
			continue
		}
		verb := render.KubectlVerb(words)
		if !strings.Contains("edit patch delete annotate label", verb) {
			continue
		}
		ns, args, seenVerb := "", []string{}, false
		for i := 1; i < len(words); i++ {
			switch w := words[i]; {
			case w == "-n":
				i++
				ns = words[i]
			case w == "-p":
				i++
			case strings.HasPrefix(w, "-"):
			case !seenVerb:
				seenVerb = true
			default:
				args = append(args, w)
			}
		}
		if len(args) < 2 {
			t.Errorf("%q: no kind and name", line)
			continue
		}
		kind, ok := kinds[args[0]]
		if !ok {
			t.Errorf("%q: unknown kind %q", line, args[0])
			continue
		}
		if kind == "ClusterRole" || kind == "ClusterRoleBinding" {
			ns = ""
		}
		if !defined[kind+"/"+ns+"/"+args[1]] {
			t.Errorf("%q: %s %s in %q is not defined in examples/cluster", line, kind, args[1], ns)
		}
	}
	if lines < 10 {
		t.Errorf("only %d command lines in the example report", lines)
	}
}

// exampleObjects returns the objects examples/cluster defines, as
// "Kind/namespace/name", read from the YAML and JSON files by their kind,
// name and namespace lines (enough for these hand-written files), plus the
// bootstrap ClusterRoles the API server always has.
func exampleObjects(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{"ClusterRole//cluster-admin": true, "ClusterRole//admin": true, "ClusterRole//edit": true, "ClusterRole//view": true}
	files, err := filepath.Glob(filepath.Join(env.root, "examples", "cluster", "*"))
	if err != nil {
		t.Fatal(err)
	}
	field := regexp.MustCompile(`^\s*"?(kind|name|namespace)"?\s*:\s*"?([^",]+)"?,?\s*$`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var kind, name, ns string
		flush := func() {
			if kind != "" && name != "" {
				out[kind+"/"+ns+"/"+name] = true
			}
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			m := field.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			switch m[1] {
			case "kind":
				flush()
				kind, name, ns = strings.TrimSpace(m[2]), "", ""
			case "name":
				if name == "" {
					name = strings.TrimSpace(m[2])
				}
			case "namespace":
				if ns == "" {
					ns = strings.TrimSpace(m[2])
				}
				flush()
			}
		}
		flush()
	}
	return out
}
