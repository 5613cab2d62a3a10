-- Issue 14 ("Trust"): a nightly report can be replaced, nobody can take the nightly run's request
-- id first, and the benchmarks can tell a generated database from real data.

-- 1. Generations. `stockpile nightly --replace` (POST /api/v1/reports/nightly/{date}/replace)
-- supersedes the stored report of a date and scope: the run that replaces it is the next
-- generation. A superseded report stays where it was, lines and all, marked superseded_at/by, so
-- it can always be read back (WHERE generation = n); readers take the one not superseded. The
-- superseded mark and the new report are written in the same transaction, under the run's
-- advisory lock, so there is always exactly one current report, and a replace that dies leaves
-- the old one current.
ALTER TABLE nightly_lines DROP CONSTRAINT nightly_lines_as_of_scope_fkey;
ALTER TABLE nightly_reports
    ADD COLUMN generation integer NOT NULL DEFAULT 1 CHECK (generation >= 1),
    ADD COLUMN superseded_at timestamptz,
    ADD COLUMN superseded_by text,
    DROP CONSTRAINT nightly_reports_pkey,
    ADD PRIMARY KEY (as_of, scope, generation);
CREATE UNIQUE INDEX nightly_reports_current ON nightly_reports (as_of, scope) WHERE superseded_at IS NULL;
ALTER TABLE nightly_lines
    ADD COLUMN generation integer NOT NULL DEFAULT 1,
    DROP CONSTRAINT nightly_lines_pkey,
    ADD PRIMARY KEY (as_of, scope, generation, section, n),
    ADD FOREIGN KEY (as_of, scope, generation) REFERENCES nightly_reports (as_of, scope, generation);
-- Every report stored until now is generation 1; from now on the run names its generation.
ALTER TABLE nightly_reports ALTER COLUMN generation DROP DEFAULT;
ALTER TABLE nightly_lines ALTER COLUMN generation DROP DEFAULT;

DROP POLICY nightly_lines_in_scope ON nightly_lines;
CREATE POLICY nightly_lines_in_scope ON nightly_lines
    USING (EXISTS (SELECT 1 FROM nightly_reports r WHERE r.as_of = nightly_lines.as_of AND r.scope = nightly_lines.scope
                                                     AND r.generation = nightly_lines.generation))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all');
-- Marking a report superseded is the only change a stored report ever sees (the policy's WITH
-- CHECK admits only the 'all' scope: admins and jobs).
GRANT UPDATE (superseded_at, superseded_by) ON nightly_reports TO stockpile_app;

-- 2. The nightly run's request id. It was md5 of 'stockpile/nightly/<date>/<scope>': anyone could
-- compute it and POST /api/v1/reallocations under it first, and the nightly run then "replayed"
-- that client's orders as its own. Now it is derived from the run's name, its generation and a
-- secret drawn once per database here: the id stays deterministic (a run that died after creating
-- its orders finds them again on the next try, and a pg_dump/restore carries the secret along),
-- but nobody without the secret can compute it. The service role may not read the secret, only
-- ask for the id of a name (SECURITY DEFINER), and the secret comes last in the hash so a known
-- id gives no way to extend it to another name. Reports stored before this migration keep the
-- request id they recorded (nightly_reports.request_id); a replace cancels orders by that column.
CREATE TABLE nightly_secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret   text NOT NULL
);
INSERT INTO nightly_secret (secret) VALUES (gen_random_uuid()::text || gen_random_uuid()::text);
REVOKE ALL ON nightly_secret FROM PUBLIC;

CREATE FUNCTION nightly_request_id(p_run text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT substr(encode(sha256(convert_to(p_run || '|' || s.secret, 'UTF8')), 'hex'), 1, 32)::uuid FROM public.nightly_secret s
$$;
REVOKE ALL ON FUNCTION nightly_request_id(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nightly_request_id(text) TO stockpile_app;

-- 3. The mark of a database `stockpile generate` made: `stockpile bench cover|plan|nightly` write
-- into the database they run on (issues into the ledger, the date's nightly report deleted), so
-- they refuse one without this row unless told --allow-real-data. generate writes it in the same
-- transaction as its first rows, and only into a database without facilities.
CREATE TABLE synthetic_city (
    generated_at timestamptz NOT NULL DEFAULT now(),
    facilities   integer NOT NULL,
    items        integer NOT NULL,
    days         integer,
    seed         integer,
    as_of        date
);
GRANT SELECT, INSERT ON synthetic_city TO stockpile_app;

-- A city generated before this migration is recognised by its own shape: the root region G
-- (合成市) and no facility that generate did not make. Real data never looks like that.
SELECT set_config('stockpile.scope', 'all', true);
INSERT INTO synthetic_city (generated_at, facilities, items)
SELECT now(), (SELECT count(*) FROM facilities), (SELECT count(*) FROM items)
WHERE EXISTS (SELECT 1 FROM regions WHERE code = 'G' AND name = '合成市' AND parent_id IS NULL)
  AND EXISTS (SELECT 1 FROM facilities)
  AND NOT EXISTS (SELECT 1 FROM facilities WHERE code NOT LIKE 'G-F%');
