-- The access review state of an audit's report (report.review: the
-- revocations its audit checked and the cluster's recent campaigns), set
-- once the report-agent has named the report's Revoke findings, after the
-- report input was stored with the findings (store.SaveResult). It is
-- stored on its own (store.SaveReviewState), as a protobuf Report with only
-- its review set, rather than by writing the whole input again, and merged
-- into the input where it is read back (store.ReportInput). NULL: the audit
-- ran without a review registry, or before this migration (its input then
-- holds the state, if any).

-- +goose Up
ALTER TABLE report_inputs ADD COLUMN review BLOB;
