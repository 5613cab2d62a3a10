-- The nightly reorder report (SPEC.md "Nightly reorder report"): one per date and scope. A run
-- holds a transaction-scoped advisory lock on its date and scope from start to finish and writes
-- its report in that same transaction, so a second run waits and then finds the report, and a run
-- that dies leaves no row at all. Tonight's reallocation orders are created under a request id
-- derived from the date and scope (reallocation_orders.request_id), so a rerun replays them.

CREATE TABLE nightly_reports (
    as_of        date NOT NULL,
    -- The region code of the subtree it covers, or '*' for everything.
    scope        text NOT NULL CHECK (scope <> ''),
    request_id   uuid NOT NULL,
    -- The facilities in the scope when it ran: who may read it (row-level security below).
    facility_ids integer[] NOT NULL,
    report       jsonb NOT NULL,
    positions    bigint NOT NULL,
    orders       integer NOT NULL,
    reorder_lines integer NOT NULL,
    procurement_qty bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    PRIMARY KEY (as_of, scope)
);

-- A report is for its whole scope: a token sees it only when every facility in it is the token's
-- (a command token its subtree's reports; admins and jobs all of them).
ALTER TABLE nightly_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE nightly_reports FORCE ROW LEVEL SECURITY;
CREATE POLICY nightly_in_scope ON nightly_reports
    USING (current_setting('stockpile.scope', true) = 'all'
           OR (scope <> '*' AND current_setting('stockpile.scope', true) = 'facilities'
               AND facility_ids <@ coalesce(nullif(current_setting('stockpile.facility_ids', true), ''), '{}')::integer[]))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all');

GRANT SELECT, INSERT ON nightly_reports TO stockpile_app;
