-- The nightly report's lines in runs: a row of nightly_lines now holds up to 1,000 consecutive
-- lines of one section (n: the run's place, lines n × 1,000 onwards) as the JSON array the run
-- encoded, text compressed with lz4. A row of jsonb per line made a city's report millions of
-- rows: PostgreSQL parsed 2 GB of JSON, indexed and checked every row against its report, and
-- wrote it all twice (COPY cannot write through row-level security, so it went through a
-- temporary table). Nothing queries inside a line; the readers decode whole sections.
-- Tonight's orders move here too (section 'orders'): in the header they made one jsonb value of
-- over 200 MB for a city, near the 255 MB a jsonb value may hold.

-- Row-level security binds the owner too (FORCE): off while the stored reports are carried over.
ALTER TABLE nightly_reports DISABLE ROW LEVEL SECURITY;
ALTER TABLE nightly_lines DISABLE ROW LEVEL SECURITY;

CREATE TEMP TABLE nightly_line_runs ON COMMIT DROP AS
SELECT as_of, scope, section, n / 1000 AS n, '[' || string_agg(line::text, ',' ORDER BY n) || ']' AS lines
FROM nightly_lines GROUP BY as_of, scope, section, n / 1000
UNION ALL
SELECT as_of, scope, 'orders', (o.n - 1) / 1000, '[' || string_agg(o.line::text, ',' ORDER BY o.n) || ']'
FROM nightly_reports, jsonb_array_elements(report -> 'orders') WITH ORDINALITY AS o(line, n)
GROUP BY as_of, scope, (o.n - 1) / 1000;

TRUNCATE nightly_lines;
ALTER TABLE nightly_lines DROP COLUMN line, ADD COLUMN lines text COMPRESSION lz4 NOT NULL,
    DROP CONSTRAINT nightly_lines_section_check,
    ADD CONSTRAINT nightly_lines_section_check CHECK (section IN ('orders', 'reorders', 'contract_gaps', 'expiring_lots', 'stale'));
INSERT INTO nightly_lines (as_of, scope, section, n, lines) SELECT as_of, scope, section, n, lines FROM nightly_line_runs;
UPDATE nightly_reports SET report = jsonb_set(report, '{orders}', '[]') WHERE report -> 'orders' <> '[]';

ALTER TABLE nightly_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE nightly_lines ENABLE ROW LEVEL SECURITY;
