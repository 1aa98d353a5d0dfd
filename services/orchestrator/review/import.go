package review

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	secureauditv1 "secureaudit.dev/gen/secureaudit/v1"
)

// The access review CSV's columns an import reads. key names the item;
// subject_kind, subject and access are what the reviewer saw and must not
// have been edited; decision and comment are the reviewer's.
const (
	colKey      = "key"
	colKind     = "subject_kind"
	colSubject  = "subject"
	colAccess   = "access"
	colDecision = "decision"
	colComment  = "comment"
)

// protected are the columns compared with the sheet the audit produced.
var protected = []string{colKind, colSubject, colAccess}

// RowError is a row of an imported sheet that cannot be recorded; nothing
// of the sheet is.
type RowError struct {
	Row    int
	Reason string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row %d: %s; nothing of the sheet was recorded", e.Row, e.Reason)
}

// sheet is a parsed CSV: its header's column positions and its rows with
// their spreadsheet row numbers (the header is row 1).
type sheet struct {
	cols map[string]int
	rows [][]string
	nums []int
}

func (s *sheet) get(row []string, col string) string {
	i, ok := s.cols[col]
	if !ok || i >= len(row) {
		return ""
	}
	return row[i]
}

func parseSheet(data []byte, what string, need ...string) (*sheet, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, &InvalidError{What: what + " is empty"}
	}
	if err != nil {
		return nil, &InvalidError{What: fmt.Sprintf("%s: %v", what, err)}
	}
	s := &sheet{cols: map[string]int{}}
	for i, h := range header {
		s.cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range need {
		if _, ok := s.cols[c]; !ok {
			return nil, &InvalidError{What: fmt.Sprintf("%s has no %q column: import the access review CSV the report produced (secureaudit report ID --format csv), with its decision column filled in", what, c)}
		}
	}
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &InvalidError{What: fmt.Sprintf("%s: %v", what, err)}
		}
		s.rows = append(s.rows, row)
		s.nums = append(s.nums, len(s.rows)+1)
	}
	return s, nil
}

// Import records the decisions of a filled-in access review CSV of an
// audit's campaign (the latest succeeded audit's when auditID is ""), all
// made by the person idToken names. Rows are matched by their key column,
// in any order; a row whose key names no item, whose subject or access
// was edited, that repeats an item, or whose decision is not one of the
// sign-off's is refused naming its row, and then nothing is recorded. Rows
// without a decision are skipped.
func (r *Registry) Import(ctx context.Context, auditID string, data []byte, idToken string) (*secureauditv1.ImportReviewResponse, error) {
	by, err := r.person(ctx, idToken)
	if err != nil {
		return nil, err
	}
	l, err := r.load(ctx, auditID)
	if err != nil {
		return nil, err
	}
	a := l.audit
	sh, err := parseSheet(data, "the imported sheet", colKey, colKind, colSubject, colAccess, colDecision)
	if err != nil {
		return nil, err
	}
	// The sheet the audit produced, when it was rendered, is what each row
	// is compared with; else the report's items are.
	var orig map[string][]string
	var origSheet *sheet
	if doc, err := r.audits.Report(ctx, a.GetId(), secureauditv1.ReportFormat_REPORT_FORMAT_CSV); err == nil && len(doc) > 0 {
		if origSheet, err = parseSheet(doc, "audit "+a.GetId()+"'s CSV", colKey); err == nil {
			orig = map[string][]string{}
			for _, row := range origSheet.rows {
				orig[origSheet.get(row, colKey)] = row
			}
		}
	}
	subjects := l.subjects
	now := r.now().UTC()
	seen := map[string]int{}
	out := &secureauditv1.ImportReviewResponse{}
	var ps []*pending
	for i, row := range sh.rows {
		num := sh.nums[i]
		key := strings.TrimSpace(sh.get(row, colKey))
		if key == "" {
			return nil, &RowError{Row: num, Reason: "no key: the row is not one of the access review's items"}
		}
		if prev, ok := seen[key]; ok {
			return nil, &RowError{Row: num, Reason: fmt.Sprintf("item %s is also row %d", key, prev)}
		}
		seen[key] = num
		s := subjects[key]
		if s == nil {
			return nil, &RowError{Row: num, Reason: fmt.Sprintf("key %s names no item of audit %s's access review (a row of another audit's sheet, or an edited key)", key, a.GetId())}
		}
		if o, ok := orig[key]; ok {
			for _, col := range protected {
				if got, want := sh.get(row, col), origSheet.get(o, col); got != want {
					return nil, &RowError{Row: num, Reason: fmt.Sprintf("item %s's %s was edited: %q, the report has %q", key, col, clip(got), clip(want))}
				}
			}
		} else {
			if got, want := sh.get(row, colKind), kindText(s.GetSubject().GetKind()); got != want {
				return nil, &RowError{Row: num, Reason: fmt.Sprintf("item %s's subject_kind was edited: %q, the report has %q", key, clip(got), want)}
			}
			if got := sh.get(row, colSubject); !strings.HasPrefix(got, kindText(s.GetSubject().GetKind())+" "+s.GetSubject().GetName()) {
				return nil, &RowError{Row: num, Reason: fmt.Sprintf("item %s's subject was edited: %q, the report has %s", key, clip(got), SubjectString(s.GetSubject()))}
			}
		}
		text := strings.TrimSpace(sh.get(row, colDecision))
		if text == "" {
			out.Skipped++
			continue
		}
		kind, ok := ParseDecision(text)
		if !ok {
			return nil, &RowError{Row: num, Reason: fmt.Sprintf("decision %q is not one of Confirmed, Requires justification, Revoke", clip(text))}
		}
		p, err := r.prepare(l, key, kind, strings.TrimSpace(sh.get(row, colComment)), by, now)
		if err != nil {
			var own *OwnAccessError
			if errors.As(err, &own) {
				return nil, &OwnAccessRowError{Row: num, Err: own}
			}
			return nil, &RowError{Row: num, Reason: err.Error()}
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, &InvalidError{What: fmt.Sprintf("the sheet has no decision to record (%d rows without one): fill in the decision column (Confirmed, Requires justification, Revoke)", out.GetSkipped())}
	}
	if err := r.record(ctx, ps); err != nil {
		return nil, err
	}
	for _, p := range ps {
		out.Decisions = append(out.Decisions, p.decision)
		if p.revocation != nil {
			out.Revocations = append(out.Revocations, p.revocation)
		}
	}
	return out, nil
}

// OwnAccessRowError is a row refused by separation of duties.
type OwnAccessRowError struct {
	Row int
	Err *OwnAccessError
}

func (e *OwnAccessRowError) Error() string {
	return fmt.Sprintf("row %d: %v; nothing of the sheet was recorded", e.Row, e.Err)
}

func (e *OwnAccessRowError) Unwrap() error { return e.Err }

func kindText(k secureauditv1.SubjectKind) string {
	switch k {
	case secureauditv1.SubjectKind_SUBJECT_KIND_USER:
		return "User"
	case secureauditv1.SubjectKind_SUBJECT_KIND_GROUP:
		return "Group"
	case secureauditv1.SubjectKind_SUBJECT_KIND_SERVICE_ACCOUNT:
		return "ServiceAccount"
	}
	return "Subject"
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
