package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/report-agent/entry"
)

// TestRealWorldCorpus audits the real-world corpus (testdata/realworld: the
// RBAC, namespaces and workloads of twelve operators' published install
// manifests, with the bootstrap ClusterRoles captured from a pristine API
// server) with `secureaudit scan`, and pins what a reviewer gets:
//
//   - testdata/realworld/findings.txt: every main rule hit (rule, subject,
//     binding, severity), sorted, as report.json lists them;
//   - testdata/realworld/entries.txt: the reviewer's entries, one per grant,
//     each with the rule hits it holds;
//   - testdata/realworld/informational.txt: the informational entries (every
//     hit INFO, entry.Entry.Informational), which the report lists apart;
//   - testdata/realworld/appendix.txt: the findings put in the platform-managed
//     appendix;
//   - testdata/realworld/summary.txt: the counts and report.md's length;
//
// all rewritten by -update. Every rule hit must belong to exactly one entry,
// and testdata/realworld/EXPECTED.md must hold exactly one row per entry
// with a reviewer's judgement, so that no entry comes or goes without
// somebody saying whether it is right.
func TestRealWorldCorpus(t *testing.T) {
	corpus := filepath.Join(env.root, "testdata", "realworld")
	snap := t.TempDir()
	projects := copyCorpus(t, corpus, snap)
	if len(projects) < 10 {
		t.Fatalf("the corpus has %d projects, want at least 10", len(projects))
	}
	writeBootstrap(t, filepath.Join(env.root, "services", "risk-agent", "rules", "upstream", "bootstrap-clusterroles.json"),
		filepath.Join(snap, "bootstrap-clusterroles.json"))

	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := scan(t, "--snapshot", snap, "--cluster-name", "realworld", "--skip-directory", "--out", out, "--format", "md,json")
	if code != 0 {
		t.Fatalf("scan: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	report := readReport(t, filepath.Join(out, "report.json"))
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Flux's crd-controller binding names ServiceAccounts of components this
	// install does not create: their entries say the subject is missing (a
	// latent grant), and only theirs.
	latent := regexp.MustCompile(`\*\*Who is affected:\*\* ServiceAccount (\S+) in (\S+); this ServiceAccount does not exist in the snapshot`)
	var missing []string
	for _, m := range latent.FindAllStringSubmatch(string(md), -1) {
		missing = append(missing, m[2]+"/"+m[1])
	}
	if diff := cmp.Diff([]string{"flux-system/image-automation-controller", "flux-system/image-reflector-controller", "flux-system/source-watcher"}, missing); diff != "" {
		t.Errorf("entries of bound but missing ServiceAccounts (-want +got):\n%s", diff)
	}
	// The corpus keeps only the kinds the audit reads: no Secret, ConfigMap
	// or CRD of a published manifest is copied here (SOURCES.md).
	if skipped := report.GetSkipped(); len(skipped) > 0 {
		t.Errorf("the corpus holds kinds the audit does not read: %v", skipped)
	}

	var main, appendix []string
	critical := 0
	for _, f := range report.GetFindings() {
		main = append(main, corpusKey(f))
		if f.GetSeverity() == secureauditv1.Severity_SEVERITY_CRITICAL {
			critical++
		}
	}
	for _, f := range report.GetInfrastructureFindings() {
		appendix = append(appendix, corpusKey(f))
	}
	sort.Strings(main)
	sort.Strings(appendix)
	checkCorpusGolden(t, filepath.Join(corpus, "findings.txt"), strings.Join(main, "\n")+"\n")

	all := entry.Group(report.GetFindings())
	checkEntries(t, report.GetFindings(), all)
	entries, informational := entry.Split(all)
	list := func(es []entry.Entry) []string {
		var out []string
		for _, e := range es {
			var hits []string
			for _, f := range e.Hits() {
				hits = append(hits, f.GetRuleId()+" "+severityName(f.GetSeverity())+" "+strings.TrimPrefix(findingKey(f), f.GetRuleId()+" "))
			}
			sort.Strings(hits)
			out = append(out, entryKey(e)+"\n    "+strings.Join(hits, "\n    "))
		}
		sort.Strings(out)
		return out
	}
	var rowsWant []string
	entryCritical := 0
	for _, e := range entries {
		rowsWant = append(rowsWant, entryKey(e))
		if e.Severity() == secureauditv1.Severity_SEVERITY_CRITICAL {
			entryCritical++
		}
	}
	sort.Strings(rowsWant)
	checkCorpusGolden(t, filepath.Join(corpus, "entries.txt"), strings.Join(list(entries), "\n")+"\n")
	// The informational entries (every hit INFO): not in the reviewer's
	// list, so without a row in EXPECTED.md, but pinned here so that none
	// comes or goes unseen.
	checkCorpusGolden(t, filepath.Join(corpus, "informational.txt"), strings.Join(list(informational), "\n")+"\n")
	if bytes.Contains(md, []byte("## Informational hits")) != (len(informational) > 0) {
		t.Errorf("report.md's informational section does not match the %d informational entries", len(informational))
	}
	checkCorpusGolden(t, filepath.Join(corpus, "appendix.txt"), strings.Join(appendix, "\n")+"\n")

	bySeverity := map[string]int{}
	for _, f := range report.GetFindings() {
		bySeverity[severityName(f.GetSeverity())]++
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "projects: %s\n", strings.Join(projects, ", "))
	bySeverityEntries := map[string]int{}
	for _, e := range entries {
		bySeverityEntries[severityName(e.Severity())]++
	}
	fmt.Fprintf(&summary, "main entries: %d\n", len(entries))
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"} {
		fmt.Fprintf(&summary, "  %s: %d\n", strings.ToLower(s), bySeverityEntries[s])
	}
	informationalHits := 0
	for _, e := range informational {
		informationalHits += len(e.Hits())
	}
	fmt.Fprintf(&summary, "informational entries: %d (%d rule hits, in the main rule hits below)\n", len(informational), informationalHits)
	fmt.Fprintf(&summary, "main rule hits: %d\n", len(main))
	for _, s := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"} {
		fmt.Fprintf(&summary, "  %s: %d\n", strings.ToLower(s), bySeverity[s])
	}
	fmt.Fprintf(&summary, "appendix findings: %d\n", len(appendix))
	fmt.Fprintf(&summary, "report.md lines: %d\n", bytes.Count(md, []byte("\n")))
	checkCorpusGolden(t, filepath.Join(corpus, "summary.txt"), summary.String())
	t.Logf("%d entries (%d critical) holding %d main rule hits (%d critical), %d in the appendix, report.md %d lines",
		len(entries), entryCritical, len(main), critical, len(appendix), bytes.Count(md, []byte("\n")))

	rows, err := expectedRows(filepath.Join(corpus, "EXPECTED.md"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rowsWant, rows); diff != "" {
		t.Errorf("EXPECTED.md must have one row per entry of entries.txt, with a judgement (-entries +rows):\n%s", diff)
	}
}

// entryKey names an entry as entries.txt and EXPECTED.md do: its lead
// hit's rule, subject and binding, and the entry's severity.
func entryKey(e entry.Entry) string {
	key := corpusKey(e.Lead())
	return key[:strings.LastIndex(key, " ")] + " " + severityName(e.Severity())
}

// checkEntries checks that every rule hit belongs to exactly one entry,
// that every hit carries a grant key, and that an entry's hits are about
// its lead's grant or, for amplifiers and narrower grants, its subject.
func checkEntries(t *testing.T, findings []*secureauditv1.Finding, entries []entry.Entry) {
	t.Helper()
	in := map[string]int{}
	for _, e := range entries {
		lead := e.Lead()
		for _, f := range e.Hits() {
			in[f.GetId()]++
			if f.GetGrantKey() == lead.GetGrantKey() {
				continue
			}
			if !proto.Equal(f.GetSubject(), lead.GetSubject()) {
				t.Errorf("entry %s holds %s of another subject", entryKey(e), corpusKey(f))
			}
		}
	}
	for _, f := range findings {
		if f.GetGrantKey() == "" {
			t.Errorf("%s has no grant key", corpusKey(f))
		}
		if in[f.GetId()] != 1 {
			t.Errorf("%s is in %d entries, want exactly 1", corpusKey(f), in[f.GetId()])
		}
	}
}

// corpusKey names a finding as findings.txt and EXPECTED.md do: rule,
// subject, binding and severity. A finding about a role rather than a
// subject (RBAC-035, RBAC-036, RBAC-037) names the role as its subject.
func corpusKey(f *secureauditv1.Finding) string {
	key := findingKey(f)
	if f.GetSubject() == nil && f.GetRole() != nil {
		r := f.GetRole()
		role := strings.TrimPrefix(r.GetKind().String(), "ROLE_KIND_") + ":" + r.GetNamespace() + "/" + r.GetName()
		rule, rest, _ := strings.Cut(key, " ")
		_, binding, _ := strings.Cut(rest, " ")
		key = rule + " " + role + " " + binding
	}
	return key + " " + severityName(f.GetSeverity())
}

func severityName(s secureauditv1.Severity) string {
	return strings.TrimPrefix(s.String(), "SEVERITY_")
}

// copyCorpus copies every project's YAML files into dir, one file per
// project file, and returns the project names.
func copyCorpus(t *testing.T, corpus, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var projects []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := filepath.Glob(filepath.Join(corpus, e.Name(), "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("%s: no YAML files", e.Name())
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, e.Name()+"-"+filepath.Base(f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		projects = append(projects, e.Name())
	}
	return projects
}

// writeBootstrap writes the captured bootstrap ClusterRoles (a SnapshotChunk,
// see services/risk-agent/rules/upstream/README.md) as the ClusterRoleList a
// pristine API server answers, so the corpus is audited on top of the
// platform's own roles without a second copy of them in the tree.
func writeBootstrap(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var chunk secureauditv1.SnapshotChunk
	if err := protojson.Unmarshal(data, &chunk); err != nil {
		t.Fatalf("%s: %v", from, err)
	}
	type rule struct {
		APIGroups       []string `json:"apiGroups,omitempty"`
		Resources       []string `json:"resources,omitempty"`
		ResourceNames   []string `json:"resourceNames,omitempty"`
		NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
		Verbs           []string `json:"verbs"`
	}
	type requirement struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values,omitempty"`
	}
	type selector struct {
		MatchLabels      map[string]string `json:"matchLabels,omitempty"`
		MatchExpressions []requirement     `json:"matchExpressions,omitempty"`
	}
	type aggregation struct {
		ClusterRoleSelectors []selector `json:"clusterRoleSelectors"`
	}
	type meta struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels,omitempty"`
	}
	type clusterRole struct {
		APIVersion      string       `json:"apiVersion"`
		Kind            string       `json:"kind"`
		Metadata        meta         `json:"metadata"`
		Rules           []rule       `json:"rules"`
		AggregationRule *aggregation `json:"aggregationRule,omitempty"`
	}
	list := struct {
		APIVersion string        `json:"apiVersion"`
		Kind       string        `json:"kind"`
		Items      []clusterRole `json:"items"`
	}{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleList"}
	for _, cr := range chunk.GetClusterRoles() {
		item := clusterRole{Metadata: meta{Name: cr.GetMeta().GetName(), Labels: cr.GetMeta().GetLabels()}, Rules: []rule{}}
		for _, r := range cr.GetRules() {
			item.Rules = append(item.Rules, rule{APIGroups: r.GetApiGroups(), Resources: r.GetResources(),
				ResourceNames: r.GetResourceNames(), NonResourceURLs: r.GetNonResourceUrls(), Verbs: r.GetVerbs()})
		}
		if sels := cr.GetAggregationSelectors(); len(sels) > 0 {
			item.AggregationRule = &aggregation{ClusterRoleSelectors: []selector{}}
			for _, s := range sels {
				sel := selector{MatchLabels: s.GetMatchLabels()}
				for _, e := range s.GetMatchExpressions() {
					sel.MatchExpressions = append(sel.MatchExpressions, requirement{Key: e.GetKey(), Operator: e.GetOperator(), Values: e.GetValues()})
				}
				item.AggregationRule.ClusterRoleSelectors = append(item.AggregationRule.ClusterRoleSelectors, sel)
			}
		}
		list.Items = append(list.Items, item)
	}
	if len(list.Items) == 0 {
		t.Fatalf("%s: no ClusterRoles", from)
	}
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkCorpusGolden compares got with the golden file at path, or rewrites
// it under -update.
func checkCorpusGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", filepath.Base(path), diff)
	}
}

// judgements are how a row of EXPECTED.md may start its judgement.
var judgements = []string{"right", "noise", "wrong"}

// expectedRows reads EXPECTED.md's table of findings, rows of
// "| rule | subject | binding | severity | judgement |", and returns their
// keys as corpusKey writes them, sorted. A row without a judgement that
// starts with one of judgements and a colon is an error.
func expectedRows(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) < 5 || cells[0] == "rule" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		verdict, _, ok := strings.Cut(strings.Join(cells[4:], "|"), ":")
		if !ok || !slices.Contains(judgements, verdict) {
			return nil, fmt.Errorf("%s:%d: the judgement must start with one of %s and a colon", path, n, strings.Join(judgements, ", "))
		}
		rows = append(rows, strings.Join(cells[:4], " "))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Strings(rows)
	return rows, nil
}
