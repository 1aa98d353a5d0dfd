package render

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// CSVHeader is the header row of the access review CSV.
var CSVHeader = []string{
	"item", "key", "subject_kind", "subject", "display_name", "in_directory", "access", "cluster_wide",
	"members", "guests", "disabled", "owners", "finding_ids", "highest_severity", "model_note",
	"decision", "reviewer", "date", "comment",
}

// CSV renders the access review for a spreadsheet: one row per review item,
// in the report's order, keyed by the item's key in its audit's review
// campaign (secureaudit review import matches rows by it, so a re-ordered
// sheet is matched and an edited one refused), with empty decision,
// reviewer, date and comment
// columns to fill in (decision: Confirmed, Requires justification or
// Revoke). Cells that a spreadsheet would run as a formula are prefixed with
// a quote (OWASP's CSV injection advice), since names come from the cluster.
func CSV(r *secureauditv1.Report) ([]byte, error) {
	var b bytes.Buffer
	if err := WriteCSV(&b, r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteCSV writes the access review as CSV (see CSV) to out.
func WriteCSV(out io.Writer, r *secureauditv1.Report) error {
	v := newView(r)
	byNumber := map[int]*findingView{}
	for _, f := range v.Findings {
		byNumber[f.Number] = f
	}
	w := csv.NewWriter(out)
	if err := w.Write(CSVHeader); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	for _, item := range v.Review {
		var access []string
		cluster := false
		for _, g := range item.Grants {
			text := g.RoleText() + " through " + g.Binding + ", " + g.Scope
			if g.Route != "" {
				text += " (route: " + g.Route + ")"
			}
			access = append(access, text)
			cluster = cluster || g.Cluster
		}
		// The subject's accepted risks, out of the report's findings, are
		// named in its access cell so the reviewer sees them.
		for _, a := range v.Accepted {
			if a.Finding.subjectKey == item.key {
				access = append(access, fmt.Sprintf("accepted risk: %s finding %s, acceptance %d until %s (ticket %s, approved by %s)",
					a.Finding.RuleID, a.Finding.ID, a.AcceptanceID, a.Expires, a.Ticket, a.ApprovedBy))
			}
		}
		var members, owners, ids []string
		for _, m := range item.Members {
			members = append(members, personCell(m))
		}
		for _, o := range item.Owners {
			owners = append(owners, personCell(o))
		}
		highest := ""
		for _, n := range item.Findings {
			f := byNumber[n]
			ids = append(ids, f.ID)
			if highest == "" {
				highest = f.Severity // findings are ordered most severe first
			}
		}
		display := ""
		guests, disabled := item.Guests, item.Disabled
		if item.Person != nil {
			display = item.Person.Display
			if item.Person.Guest {
				guests++
			}
			if item.Person.Disabled {
				disabled++
			}
		}
		inDirectory := "unknown"
		if item.Directory {
			inDirectory = strconv.FormatBool(item.Resolved)
		}
		row := []string{
			strconv.Itoa(item.Number), item.Key, item.Kind, item.Subject, display, inDirectory,
			strings.Join(access, "; "), strconv.FormatBool(cluster),
			strings.Join(members, "; "), strconv.Itoa(guests), strconv.Itoa(disabled), strings.Join(owners, "; "),
			strings.Join(ids, " "), highest, item.Note, "", "", "", "",
		}
		for i := range row {
			row[i] = cell(row[i])
		}
		if err := w.Write(row); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

func personCell(p personView) string {
	if fl := p.Flags(); fl != "" {
		return p.Text() + " (" + fl + ")"
	}
	return p.Text()
}

// cell neutralizes a value a spreadsheet would evaluate as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
