package render

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// SARIF is validated against the published SARIF 2.1.0 schema
// (testdata/schemas/sarif-2.1.0-rtm.5.json, from the npm package
// @microsoft/jest-sarif). OSCAL is validated against a subset of the
// published OSCAL 1.1.2 assessment-results schema, written by hand from the
// standard because no package reachable here ships it. The subset keeps
// the official required properties, enums, patterns and
// additionalProperties: false, so that a misspelt or invented property, a
// missing required one or a value outside an enum fails.
func compileSchema(t testing.TB, file string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile("testdata/schemas/" + file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

func validate(t testing.TB, s *jsonschema.Schema, doc []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return s.Validate(inst)
}

func TestSchemas(t *testing.T) {
	schemas := map[secureauditv1.ReportFormat]*jsonschema.Schema{
		secureauditv1.ReportFormat_REPORT_FORMAT_SARIF: compileSchema(t, "sarif-2.1.0-rtm.5.json"),
		secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL: compileSchema(t, "oscal-assessment-results-1.1.2-subset.json"),
	}
	reports := map[string]*secureauditv1.Report{"sample": sampleReport(), "empty": emptyReport(), "no history": sampleFindings(), "with path": withPath(), "choke points": pathsReport(t)}
	for format, schema := range schemas {
		for name, r := range reports {
			t.Run(format.String()+"/"+name, func(t *testing.T) {
				doc, err := Document(format, r)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate(t, schema, doc); err != nil {
					t.Errorf("%s does not validate against its schema: %v", format, err)
				}
			})
		}
	}
	// The schemas reject what they should: each mutation must fail.
	mutations := []struct {
		name   string
		format secureauditv1.ReportFormat
		from   string
		to     string
	}{
		{"sarif version", secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, `"version": "2.1.0"`, `"version": "2.0.0"`},
		{"sarif baselineState", secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, `"baselineState": "new"`, `"baselineState": "fresh"`},
		{"sarif unknown property", secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, `"ruleIndex"`, `"ruleNumber"`},
		{"sarif level", secureauditv1.ReportFormat_REPORT_FORMAT_SARIF, `"level": "error"`, `"level": "critical"`},
		{"oscal state", secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, `"state": "not-satisfied"`, `"state": "failed"`},
		{"oscal uuid", secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, `"uuid": "`, `"uuid": "x`},
		{"oscal control id", secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, `"control-id": "cis`, `"control-id": "1cis`},
		{"oscal method", secureauditv1.ReportFormat_REPORT_FORMAT_OSCAL, `"TEST"`, `"SCAN"`},
	}
	for _, m := range mutations {
		t.Run("rejects/"+m.name, func(t *testing.T) {
			doc, err := Document(m.format, sampleReport())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(doc, []byte(m.from)) {
				t.Fatalf("document lacks %s", m.from)
			}
			bad := bytes.Replace(doc, []byte(m.from), []byte(m.to), 1)
			if err := validate(t, schemas[m.format], bad); err == nil {
				t.Errorf("schema accepted %s replaced by %s", m.from, m.to)
			}
		})
	}
}

type sarifDoc struct {
	Runs []struct {
		Tool struct {
			Driver struct {
				Rules []struct {
					ID         string `json:"id"`
					Help       struct{ Text, Markdown string }
					Properties map[string]any `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID              string            `json:"ruleId"`
			RuleIndex           int               `json:"ruleIndex"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			BaselineState       string            `json:"baselineState"`
			Locations           []struct {
				PhysicalLocation struct {
					ArtifactLocation struct{ URI string } `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
		} `json:"results"`
	} `json:"runs"`
}

func TestSARIF(t *testing.T) {
	tests := []struct {
		name   string
		report *secureauditv1.Report
		want   map[string]string // finding ID -> baselineState
	}{
		{"with history", sampleReport(), map[string]string{
			"0a1b2c3d4e5f6071": "updated", "1b2c3d4e5f607182": "new", "2c3d4e5f60718293": "unchanged",
			"3d4e5f6071829304": "unchanged", "6a7b8c9d0e1f2a3b": "absent",
		}},
		{"first audit", sampleFindings(), map[string]string{
			"0a1b2c3d4e5f6071": "", "1b2c3d4e5f607182": "", "2c3d4e5f60718293": "", "3d4e5f6071829304": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := SARIF(tt.report)
			if err != nil {
				t.Fatal(err)
			}
			var doc sarifDoc
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			run := doc.Runs[0]
			got := map[string]string{}
			for _, r := range run.Results {
				got[r.PartialFingerprints[FingerprintKey]] = r.BaselineState
				rule := run.Tool.Driver.Rules[r.RuleIndex]
				if rule.ID != r.RuleID {
					t.Errorf("result of %s points at rule %s", r.RuleID, rule.ID)
				}
				if len(r.Locations) != 1 || !strings.HasPrefix(r.Locations[0].PhysicalLocation.ArtifactLocation.URI, "k8s/aks-prod-weu/") {
					t.Errorf("result %s has locations %+v, want one k8s/aks-prod-weu/ URI (code scanning needs one)", r.RuleID, r.Locations)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("baselineState by finding (-want +got):\n%s", diff)
			}
			for _, rule := range run.Tool.Driver.Rules {
				if rule.Help.Text == "" || !strings.Contains(rule.Help.Markdown, "Controls:") {
					t.Errorf("rule %s lacks help text", rule.ID)
				}
				s, _ := rule.Properties["security-severity"].(string)
				if f, err := strconv.ParseFloat(s, 64); err != nil || f <= 0 || f > 10 {
					t.Errorf("rule %s security-severity %q is not a number in (0, 10]", rule.ID, s)
				}
			}
		})
	}
}

func TestOSCALControls(t *testing.T) {
	data, err := OSCAL(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AR struct {
			Results []struct {
				Observations []struct {
					UUID string `json:"uuid"`
				} `json:"observations"`
				Findings []struct {
					Target struct {
						TargetID string `json:"target-id"`
						Status   struct{ State string }
					} `json:"target"`
					Related []struct {
						UUID string `json:"observation-uuid"`
					} `json:"related-observations"`
				} `json:"findings"`
			} `json:"results"`
		} `json:"assessment-results"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	res := doc.AR.Results[0]
	if len(res.Observations) != len(sampleReport().GetFindings()) {
		t.Errorf("%d observations, want one per finding (%d)", len(res.Observations), len(sampleReport().GetFindings()))
	}
	obs := map[string]bool{}
	for _, o := range res.Observations {
		obs[o.UUID] = true
	}
	got := map[string]string{}
	for _, f := range res.Findings {
		got[f.Target.TargetID] = f.Target.Status.State + "/" + strconv.Itoa(len(f.Related))
		for _, r := range f.Related {
			if !obs[r.UUID] {
				t.Errorf("finding %s relates to unknown observation %s", f.Target.TargetID, r.UUID)
			}
		}
	}
	want := map[string]string{
		"cis-5.1.1": "not-satisfied/1", "cis-5.1.2": "not-satisfied/1", "cis-5.1.4": "not-satisfied/1",
		"cis-5.1.7": "satisfied/0", "soc2-cc6.2": "not-satisfied/1", "soc2-cc6.3": "not-satisfied/3",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("control %s: %s, want %s", id, got[id], w)
		}
	}
}

func TestCSV(t *testing.T) {
	r := sampleReport()
	r.AccessReview[2].Subject.Name = "=HYPERLINK(\"http://x\")"
	data, err := CSV(r)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("report.csv does not parse: %v", err)
	}
	if diff := cmp.Diff(CSVHeader, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if len(rows) != 1+len(r.GetAccessReview()) {
		t.Fatalf("%d rows, want a header and one per review subject (%d)", len(rows), len(r.GetAccessReview()))
	}
	col := func(name string) int {
		for i, h := range CSVHeader {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	for _, row := range rows[1:] {
		if len(row) != len(CSVHeader) {
			t.Errorf("row %v has %d cells, want %d", row, len(row), len(CSVHeader))
		}
		for _, c := range row {
			if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				t.Errorf("cell %q would run as a spreadsheet formula", c)
			}
		}
	}
	first := rows[1]
	checks := map[string]string{
		"item": "1", "subject_kind": "Group", "in_directory": "true", "cluster_wide": "true",
		"guests": "0", "disabled": "1", "finding_ids": "0a1b2c3d4e5f6071", "highest_severity": "Critical", "decision": "",
	}
	for name, want := range checks {
		if got := first[col(name)]; got != want {
			t.Errorf("first row %s = %q, want %q", name, got, want)
		}
	}
}

func TestCell(t *testing.T) {
	for in, want := range map[string]string{"": "", "alice": "alice", "=1+1": "'=1+1", "+x": "'+x", "-x": "'-x", "@x": "'@x", "a=b": "a=b"} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}
