package identity_test

import (
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
	"secureaudit.dev/services/risk-agent/identity"
	"secureaudit.dev/services/risk-agent/registry"
	"secureaudit.dev/services/risk-agent/snapshot"
)

var update = flag.Bool("update", false, "rewrite testdata/rules/*/want.json from the current output")

// want is one expected finding of a fixture.
type want struct {
	RuleID      string `json:"ruleId"`
	Severity    string `json:"severity"`
	SubjectKind string `json:"subjectKind"`
	Subject     string `json:"subject"`
	SubjectNS   string `json:"subjectNamespace,omitempty"`
	Binding     string `json:"binding,omitempty"`
	BindingNS   string `json:"bindingNamespace,omitempty"`
	Description string `json:"description"`
}

func summarize(f *secureauditv1.Finding) want {
	return want{
		RuleID:      f.GetRuleId(),
		Severity:    strings.TrimPrefix(f.GetSeverity().String(), "SEVERITY_"),
		SubjectKind: strings.TrimPrefix(f.GetSubject().GetKind().String(), "SUBJECT_KIND_"),
		Subject:     f.GetSubject().GetName(),
		SubjectNS:   f.GetSubject().GetNamespace(),
		Binding:     f.GetBinding().GetName(),
		BindingNS:   f.GetBinding().GetNamespace(),
		Description: f.GetDescription(),
	}
}

// fixture reads dir/snapshot.json (a SnapshotChunk), and when present
// dir/directory.json (a DirectoryChunk) and dir/rbac.json (the RBAC findings
// as a FindingBatch), and evaluates the identity rules over them.
func fixture(t *testing.T, dir string, cfg identity.Config) []*secureauditv1.Finding {
	t.Helper()
	chunk := &secureauditv1.SnapshotChunk{}
	if !unmarshal(t, filepath.Join(dir, "snapshot.json"), chunk) {
		t.Fatalf("%s: no snapshot.json", dir)
	}
	var dirs []*secureauditv1.DirectoryChunk
	d := &secureauditv1.DirectoryChunk{}
	if unmarshal(t, filepath.Join(dir, "directory.json"), d) {
		dirs = append(dirs, d)
	}
	rbac := &secureauditv1.FindingBatch{}
	unmarshal(t, filepath.Join(dir, "rbac.json"), rbac)
	snap := snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, dirs)
	return identity.Evaluate(snap, dirs, rbac.GetFindings(), cfg)
}

// unmarshal reads the protojson file at path into m; false when it is absent.
func unmarshal(t *testing.T, path string, m proto.Message) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(data, m); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return true
}

// TestFixtures asserts, for every rule, the exact set of that rule's
// findings (with their descriptions) in its fixture: positives and near misses.
func TestFixtures(t *testing.T) {
	for _, r := range identity.Catalogue() {
		t.Run(r.ID, func(t *testing.T) {
			dir := filepath.Join("testdata", "rules", r.ID)
			var got []want
			for _, f := range fixture(t, dir, identity.Config{}) {
				if f.GetRuleId() == r.ID {
					got = append(got, summarize(f))
				}
			}
			path := filepath.Join(dir, "want.json")
			if *update {
				data, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var wantList []want
			if err := json.Unmarshal(data, &wantList); err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			if len(wantList) == 0 {
				t.Fatalf("%s lists no findings; every fixture needs positives", path)
			}
			if diff := cmp.Diff(wantList, got); diff != "" {
				t.Errorf("findings of %s (-want +got):\n%s", r.ID, diff)
			}
		})
	}
}

// TestFindingsValid checks every finding of every fixture against the
// Finding's protovalidate rules, and that IDs are unique and controls come
// from the rule.
func TestFindingsValid(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range identity.Catalogue() {
		seen := map[string]bool{}
		for _, f := range fixture(t, filepath.Join("testdata", "rules", r.ID), identity.Config{}) {
			if err := v.Validate(f); err != nil {
				t.Errorf("%s: %s: %v", r.ID, f.GetRuleId(), err)
			}
			if err := registry.Check(f); err != nil {
				t.Errorf("%s: %v", r.ID, err)
			}
			if seen[f.GetId()] {
				t.Errorf("%s: duplicate id %s", r.ID, f.GetId())
			}
			seen[f.GetId()] = true
			if f.GetScope() == nil || len(f.GetControls()) == 0 || !strings.Contains(f.GetRemediation(), "Command: ") {
				t.Errorf("%s: incomplete finding %v", r.ID, f)
			}
		}
	}
}

func TestStaleDaysConfigurable(t *testing.T) {
	tests := []struct {
		days int
		want []string
	}{
		// Stale by the most recent of the three sign-ins: kubelogin and
		// success signed in interactively in 2024, but non-interactively
		// (12 days before the snapshot) or successfully (7 days) since;
		// allold's most recent, non-interactive, is 365 days old.
		{0, []string{"allold@t.onmicrosoft.com", "old@t.onmicrosoft.com", "older@t.onmicrosoft.com"}}, // default 90
		{365, []string{"older@t.onmicrosoft.com"}},
		{364, []string{"allold@t.onmicrosoft.com", "older@t.onmicrosoft.com"}},
		{10, []string{"allold@t.onmicrosoft.com", "kubelogin@t.onmicrosoft.com", "old@t.onmicrosoft.com", "older@t.onmicrosoft.com", "recent@t.onmicrosoft.com"}},
	}
	for _, tt := range tests {
		t.Run("", func(t *testing.T) {
			var got []string
			for _, f := range fixture(t, filepath.Join("testdata", "rules", identity.Stale), identity.Config{StaleDays: tt.days}) {
				if f.GetRuleId() == identity.Stale {
					got = append(got, f.GetSubject().GetName())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stale accounts at %d days (-want +got):\n%s", tt.days, diff)
			}
		})
	}
}

// TestNoDirectory: without directory chunks only ENTRA-006 runs, even if
// the RBAC findings name CI/CD identities.
func TestNoDirectory(t *testing.T) {
	chunk := &secureauditv1.SnapshotChunk{}
	unmarshal(t, filepath.Join("testdata", "rules", identity.PipelineAdmin, "snapshot.json"), chunk)
	rbac := &secureauditv1.FindingBatch{}
	unmarshal(t, filepath.Join("testdata", "rules", identity.PipelineAdmin, "rbac.json"), rbac)
	snap := snapshot.Build([]*secureauditv1.SnapshotChunk{chunk}, nil)
	if got := identity.Evaluate(snap, nil, rbac.GetFindings(), identity.Config{}); len(got) != 0 {
		t.Errorf("findings without a directory: %v", got)
	}
}

func TestDeterministic(t *testing.T) {
	for _, r := range identity.Catalogue() {
		dir := filepath.Join("testdata", "rules", r.ID)
		a, b := fixture(t, dir, identity.Config{}), fixture(t, dir, identity.Config{})
		if len(a) != len(b) {
			t.Fatalf("%s: %d then %d findings", r.ID, len(a), len(b))
		}
		for i := range a {
			if !proto.Equal(a[i], b[i]) {
				t.Errorf("%s: finding %d differs between runs", r.ID, i)
			}
		}
	}
}

// TestCredentialThresholdsConfigurable: ENTRA-013's expiry and secret age
// thresholds move which credentials are reported, and the commands delete
// exactly those (application credentials with az ad app, the service
// principal's own with az ad sp, certificates with --cert).
func TestCredentialThresholdsConfigurable(t *testing.T) {
	const (
		expiringApp = "00000066-0000-4000-8000-000000000066"
		expiringSP  = "00000002-0000-4000-8000-000000000002"
		soon        = "000007d1-0000-4000-8000-0000000007d1"
		later       = "000007d2-0000-4000-8000-0000000007d2"
		old2025     = "00000bb9-0000-4000-8000-000000000bb9"
		old202512   = "00000bba-0000-4000-8000-000000000bba"
		// app-expired: a secret and a certificate without a key ID, which
		// the command asks to be looked up in the list.
		expired = "az ad app credential list --id 00000065-0000-4000-8000-000000000065; az ad app credential delete --id 00000065-0000-4000-8000-000000000065 --key-id 000003e9-0000-4000-8000-0000000003e9; az ad app credential delete --id 00000065-0000-4000-8000-000000000065 --key-id <key ID from the list: CN=no key id> --cert"
	)
	tests := []struct {
		name string
		cfg  identity.Config
		want []string // the remediation of each finding, in order
	}{
		{"defaults", identity.Config{}, []string{
			"az ad app credential list --id 00000068-0000-4000-8000-000000000068; az ad app credential delete --id 00000068-0000-4000-8000-000000000068 --key-id 00000fa1-0000-4000-8000-000000000fa1",
			"az ad app credential list --id 00000070-0000-4000-8000-000000000070; az ad app credential delete --id 00000070-0000-4000-8000-000000000070 --key-id 00001771-0000-4000-8000-000000001771",
			"az ad app credential list --id 00000067-0000-4000-8000-000000000067; az ad app credential delete --id 00000067-0000-4000-8000-000000000067 --key-id " + old2025,
			"az ad app credential list --id " + expiringApp + "; az ad app credential delete --id " + expiringApp + " --key-id " + soon + " --cert",
			"az ad app credential list --id 00000069-0000-4000-8000-000000000069; az ad app credential delete --id 00000069-0000-4000-8000-000000000069 --key-id 00001389-0000-4000-8000-000000001389",
			expired,
		}},
		{"expiry 40 days, secrets 160", identity.Config{CredentialExpiryDays: 40, SecretMaxAgeDays: 160}, []string{
			"az ad app credential list --id 00000068-0000-4000-8000-000000000068; az ad app credential delete --id 00000068-0000-4000-8000-000000000068 --key-id 00000fa1-0000-4000-8000-000000000fa1",
			"az ad app credential list --id 00000070-0000-4000-8000-000000000070; az ad app credential delete --id 00000070-0000-4000-8000-000000000070 --key-id 00001771-0000-4000-8000-000000001771",
			"az ad app credential list --id 00000067-0000-4000-8000-000000000067; az ad app credential delete --id 00000067-0000-4000-8000-000000000067 --key-id " + old2025 + "; az ad app credential delete --id 00000067-0000-4000-8000-000000000067 --key-id " + old202512,
			"az ad app credential list --id " + expiringApp + "; az ad sp credential list --id " + expiringSP + "; az ad app credential delete --id " + expiringApp + " --key-id " + soon + " --cert; az ad sp credential delete --id " + expiringSP + " --key-id " + later + " --cert",
			"az ad app credential list --id 00000069-0000-4000-8000-000000000069; az ad app credential delete --id 00000069-0000-4000-8000-000000000069 --key-id 00001389-0000-4000-8000-000000001389",
			expired,
		}},
		{"expiry 10 days, secrets 250", identity.Config{CredentialExpiryDays: 10, SecretMaxAgeDays: 250}, []string{
			"az ad app credential list --id 00000068-0000-4000-8000-000000000068; az ad app credential delete --id 00000068-0000-4000-8000-000000000068 --key-id 00000fa1-0000-4000-8000-000000000fa1",
			"az ad app credential list --id 00000070-0000-4000-8000-000000000070; az ad app credential delete --id 00000070-0000-4000-8000-000000000070 --key-id 00001771-0000-4000-8000-000000001771",
			"az ad app credential list --id 00000069-0000-4000-8000-000000000069; az ad app credential delete --id 00000069-0000-4000-8000-000000000069 --key-id 00001389-0000-4000-8000-000000001389",
			expired,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range fixture(t, filepath.Join("testdata", "rules", identity.CredentialHygiene), tt.cfg) {
				if f.GetRuleId() == identity.CredentialHygiene {
					_, cmd, _ := strings.Cut(f.GetRemediation(), "Command: ")
					got = append(got, cmd)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCredentialFix: each ENTRA-013 finding says how it is fixed, for the
// report's action: a secret beside a federated credential and an expired
// credential are removed, an expiring credential and an old secret
// rotated; the command deletes exactly the finding's credentials (no
// list command).
func TestCredentialFix(t *testing.T) {
	const (
		remove = secureauditv1.CredentialFix_CREDENTIAL_FIX_REMOVE
		rotate = secureauditv1.CredentialFix_CREDENTIAL_FIX_ROTATE
	)
	var got []string
	for _, f := range fixture(t, filepath.Join("testdata", "rules", identity.CredentialHygiene), identity.Config{}) {
		if f.GetRuleId() == identity.CredentialHygiene {
			got = append(got, f.GetSeverity().String()+" "+f.GetCredentialFix().String()+" "+f.GetCredentialCommand())
			// The subject is an application, never shown as a person.
			if s := f.GetSubject(); !s.GetServicePrincipal() || s.GetDisplayName() == "" {
				t.Errorf("ENTRA-013 subject %v: want a service principal with its display name", s)
			}
		} else if f.GetCredentialFix() != 0 || f.GetCredentialCommand() != "" {
			t.Errorf("%s finding carries a credential fix", f.GetRuleId())
		}
	}
	want := []string{
		"SEVERITY_HIGH " + remove.String() + " az ad app credential delete --id 00000068-0000-4000-8000-000000000068 --key-id 00000fa1-0000-4000-8000-000000000fa1",
		// Through a nested group's standing Azure role assignment.
		"SEVERITY_HIGH " + remove.String() + " az ad app credential delete --id 00000070-0000-4000-8000-000000000070 --key-id 00001771-0000-4000-8000-000000001771",
		"SEVERITY_MEDIUM " + rotate.String() + " az ad app credential delete --id 00000067-0000-4000-8000-000000000067 --key-id 00000bb9-0000-4000-8000-000000000bb9",
		"SEVERITY_LOW " + rotate.String() + " az ad app credential delete --id 00000066-0000-4000-8000-000000000066 --key-id 000007d1-0000-4000-8000-0000000007d1 --cert",
		"SEVERITY_LOW " + remove.String() + " az ad app credential delete --id 00000069-0000-4000-8000-000000000069 --key-id 00001389-0000-4000-8000-000000001389",
		"SEVERITY_LOW " + remove.String() + " az ad app credential delete --id 00000065-0000-4000-8000-000000000065 --key-id 000003e9-0000-4000-8000-0000000003e9; az ad app credential delete --id 00000065-0000-4000-8000-000000000065 --key-id <key ID from the list: CN=no key id> --cert",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ENTRA-013 fixes (-want +got):\n%s", diff)
	}
}

// TestAzurePathCommands: ENTRA-008's command removes the route it names
// the way Azure allows: a standing assignment is deleted; an eligible one
// (PIM) cannot be deleted with az role assignment delete and is removed by
// an AdminRemove eligibility schedule request at its scope, naming its
// principal.
func TestAzurePathCommands(t *testing.T) {
	got := map[string]string{}
	for _, f := range fixture(t, filepath.Join("testdata", "rules", "ENTRA-008"), identity.Config{}) {
		if f.GetRuleId() == "ENTRA-008" {
			got[f.GetBinding().GetName()] = f.GetRemediation()
		}
	}
	if r := got["pim-only"]; !strings.Contains(r, "roleEligibilityScheduleRequests/<new-guid>?api-version=2020-10-01") ||
		!strings.Contains(r, `"requestType":"AdminRemove"`) || !strings.Contains(r, `"principalId":"00000002-0000-4000-8000-000000000002"`) ||
		strings.Contains(r, "az role assignment delete") {
		t.Errorf("an eligible route's command: %q", r)
	}
	if r := got["ops"]; !strings.Contains(r, "az role assignment delete --ids /subscriptions/") {
		t.Errorf("a standing route's command: %q", r)
	}
}
