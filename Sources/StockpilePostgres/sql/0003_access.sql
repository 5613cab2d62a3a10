-- Who may do what (SPEC.md "Access"): bearer tokens stored only as hashes, each with a role and a
-- scope; the ledger's provenance; and row-level security as a second wall behind the service's checks.

CREATE TABLE tokens (
    id           serial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name <> ''),
    -- hex SHA-256 of the secret; the secret itself is shown once, at creation, and never stored.
    hash         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('warehouse', 'command', 'admin')),
    -- command: a region subtree; warehouse: facilities.
    region_id    integer REFERENCES regions (id),
    facility_ids integer[] NOT NULL DEFAULT '{}',
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    CHECK (role <> 'command' OR region_id IS NOT NULL),
    CHECK (role <> 'warehouse' OR cardinality(facility_ids) > 0)
);

-- Every write: who (token name and role), when, from where, what, and how it ended.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    token_name     text NOT NULL,
    role           text NOT NULL,
    client_address text,
    action         text NOT NULL,
    target         text,
    status         integer,
    detail         text,
    -- facilities the write touched, so command tokens see the audit of their own subtree
    facility_ids   integer[] NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- The service sets these on its connection for every request (StockpileDatabase.withScope):
--   stockpile.scope         'all' (admin, system jobs) or 'facilities'
--   stockpile.facility_ids  '{1,2,3}': the facilities the request may read and write
--   stockpile.token         the token's name, stockpile.client the client's address
-- Unset, nothing is visible: a connection that forgot to set its scope sees no stock.
CREATE FUNCTION stockpile_in_scope(p_facility_id integer) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE current_setting('stockpile.scope', true)
        WHEN 'all' THEN true
        WHEN 'facilities' THEN p_facility_id = ANY (coalesce(nullif(current_setting('stockpile.facility_ids', true), ''), '{}')::integer[])
        ELSE false END
$$;

-- Who recorded each movement, filled from the request's settings so no caller can forget it.
ALTER TABLE movements
    ADD COLUMN token_name text DEFAULT nullif(current_setting('stockpile.token', true), ''),
    ADD COLUMN client_address text DEFAULT nullif(current_setting('stockpile.client', true), '');

ALTER TABLE movements ENABLE ROW LEVEL SECURITY;
ALTER TABLE movements FORCE ROW LEVEL SECURITY;
CREATE POLICY movements_in_scope ON movements
    USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));

ALTER TABLE balances ENABLE ROW LEVEL SECURITY;
ALTER TABLE balances FORCE ROW LEVEL SECURITY;
CREATE POLICY balances_in_scope ON balances
    USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_in_scope ON audit_log FOR SELECT
    USING (current_setting('stockpile.scope', true) = 'all'
           OR facility_ids && coalesce(nullif(current_setting('stockpile.facility_ids', true), ''), '{}')::integer[]);
CREATE POLICY audit_append ON audit_log FOR INSERT WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON tokens TO stockpile_app;
GRANT SELECT, INSERT ON audit_log TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
