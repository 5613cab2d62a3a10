-- The nightly report's lines, one row each, written with COPY in the run's transaction: a city's
-- report has millions of lines (a contract gap for most positions with demand), more than one
-- jsonb value may hold (255 MB) and more than one statement should carry. nightly_reports keeps
-- the header: summary per item, tonight's orders, counts and timings.
CREATE TABLE nightly_lines (
    as_of   date NOT NULL,
    scope   text NOT NULL,
    section text NOT NULL CHECK (section IN ('reorders', 'contract_gaps', 'expiring_lots', 'stale')),
    n       integer NOT NULL,
    line    jsonb NOT NULL,
    PRIMARY KEY (as_of, scope, section, n),
    FOREIGN KEY (as_of, scope) REFERENCES nightly_reports (as_of, scope)
);

-- Visible with its report (nightly_reports has its own scope policy).
ALTER TABLE nightly_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE nightly_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY nightly_lines_in_scope ON nightly_lines
    USING (EXISTS (SELECT 1 FROM nightly_reports r WHERE r.as_of = nightly_lines.as_of AND r.scope = nightly_lines.scope))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all');

GRANT SELECT, INSERT ON nightly_lines TO stockpile_app;
