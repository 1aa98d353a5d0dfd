package render

import (
	"strings"
	"testing"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// A partial directory answer is said in the summary, the overview and the
// identity section, with every failed lookup, and "what looks good" makes
// no claim about identities.
func TestPartialDirectory(t *testing.T) {
	complete := sampleReport()
	complete.DirectoryAvailable = true
	complete.UnresolvedPrincipals = 0
	partial := sampleReport()
	partial.DirectoryAvailable = true
	partial.UnresolvedPrincipals = 0
	partial.DirectoryPartial = true
	partial.DirectoryErrors = []*secureauditv1.LookupError{
		{Lookup: "group 4f2c1d3e-0000-4000-8000-000000000001/members", Message: "429 Too Many Requests after 5 retries"},
		{Lookup: "user dave@contoso.com", Message: "<script>alert(1)</script> 503"},
	}

	md := string(Markdown(partial))
	for _, want := range []string{
		"- **Identity data:** INCOMPLETE; 2 directory lookups failed after retries",
		"**Incomplete.** These 2 directory lookups failed after retries.",
		"- `group 4f2c1d3e-0000-4000-8000-000000000001/members`: 429 Too Many Requests after 5 retries",
		"- `user dave@contoso.com`:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(string(Markdown(complete)), "INCOMPLETE") {
		t.Error("a complete directory answer is reported incomplete")
	}
	claim := "Every user and group bound in the cluster was found in Entra ID."
	if !strings.Contains(string(Markdown(complete)), claim) {
		t.Fatalf("the complete report lacks the claim %q; the check below would prove nothing", claim)
	}
	if strings.Contains(md, claim) {
		t.Error("a partial directory answer still claims every principal was found")
	}

	page, err := HTML(partial)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`<span class="flag">incomplete</span>; 2 directory lookups failed after retries`,
		`<li><code>group 4f2c1d3e-0000-4000-8000-000000000001/members</code>: 429 Too Many Requests after 5 retries</li>`,
		`&lt;script&gt;alert(1)&lt;/script&gt; 503`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if strings.Contains(html, "<script>alert(1)") {
		t.Error("a lookup message reached the page unescaped")
	}
	if strings.Contains(html, claim) {
		t.Error("the html of a partial answer claims every principal was found")
	}

	oscal, err := OSCAL(partial)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(oscal), "identity data incomplete (2 directory lookups failed after retries") {
		t.Error("the OSCAL assessment does not say the identity data was incomplete")
	}

	// Past the report's bound the count of all failures is said, not the
	// number of entries.
	many := sampleReport()
	many.DirectoryAvailable = true
	many.DirectoryPartial = true
	many.DirectoryErrorCount = 1500
	for range 999 {
		many.DirectoryErrors = append(many.DirectoryErrors, &secureauditv1.LookupError{Lookup: "group x/members", Message: "503"})
	}
	many.DirectoryErrors = append(many.DirectoryErrors, &secureauditv1.LookupError{Lookup: "more lookups", Message: "501 more directory lookups failed"})
	if md := string(Markdown(many)); !strings.Contains(md, "INCOMPLETE; 1500 directory lookups failed") || !strings.Contains(md, "These 1500 directory lookups failed") {
		t.Error("the markdown does not count all 1500 failed lookups")
	}

	// The flag alone, without named lookups, still marks the data incomplete.
	flagOnly := sampleReport()
	flagOnly.DirectoryAvailable = true
	flagOnly.DirectoryPartial = true
	if !strings.Contains(string(Markdown(flagOnly)), "INCOMPLETE; 1 directory lookup failed") {
		t.Error("a partial flag without errors is not reported")
	}
}

// Objects left out of the snapshot as too large to audit make the RBAC
// data incomplete: the summary says so and names them, in both formats.
func TestPartialSnapshot(t *testing.T) {
	complete := sampleReport()
	partial := sampleReport()
	partial.SnapshotPartial = true
	partial.UnauditedObjects = []*secureauditv1.UnauditedObject{
		{Kind: "ClusterRole", Name: "huge", Reason: "object too large to audit: 3145800 bytes"},
		{Kind: "RoleBinding", Namespace: "team-a", Name: "<b>many</b>", Reason: "object too large to audit: subjects exceeds repeated.max_items"},
	}
	partial.UnauditedCount = 12

	md := string(Markdown(partial))
	want := "- **RBAC data:** INCOMPLETE; 12 objects the API server accepted were too large to audit and left out (ClusterRole huge, RoleBinding team-a/"
	if !strings.Contains(md, want) || !strings.Contains(md, " and 10 more; RBAC-050), so what they grant was not judged.") {
		t.Errorf("markdown lacks %q ... and 10 more:\n%s", want, md)
	}
	if strings.Contains(string(Markdown(complete)), "RBAC data:") {
		t.Error("a complete snapshot is reported incomplete")
	}
	claim := "2 of 3 users and groups hold access confined to namespaces."
	if !strings.Contains(string(Markdown(complete)), claim) {
		t.Fatalf("the complete report lacks the claim %q; the check below would prove nothing", claim)
	}
	if strings.Contains(md, claim) {
		t.Error("a snapshot with objects left out still claims access is confined to namespaces")
	}
	page, err := HTML(partial)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		`<li><strong>RBAC data:</strong> <span class="flag">incomplete</span>; 12 objects the API server accepted were too large to audit and left out (ClusterRole huge, RoleBinding team-a/&lt;b&gt;many&lt;/b&gt; and 10 more; RBAC-050)`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	doc, err := OSCAL(partial)
	if err != nil {
		t.Fatal(err)
	}
	if want := "RBAC data incomplete (12 objects too large to audit were left out, each reported as RBAC-050)"; !strings.Contains(string(doc), want) {
		t.Errorf("OSCAL lacks %q", want)
	}
}
