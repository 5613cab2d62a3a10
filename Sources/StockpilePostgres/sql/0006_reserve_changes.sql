-- Changes to reserves through the API (issue 4): call-offs against contracts, and who held a lot.

-- A contract's called-off quantity changes only through a recorded call-off: each has a
-- client-chosen id (a retried request is a replay, not a second call-off) and is never rewritten.
CREATE TABLE contract_calloffs (
    id          uuid PRIMARY KEY,
    contract_id integer NOT NULL REFERENCES contracts (id),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    note        text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by text NOT NULL
);
CREATE INDEX contract_calloffs_contract ON contract_calloffs (contract_id, recorded_at);

CREATE FUNCTION stockpile_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER calloffs_append_only BEFORE UPDATE OR DELETE ON contract_calloffs
    FOR EACH ROW EXECUTE FUNCTION stockpile_append_only();

-- Visible where the contract is (contracts has its own scope policy).
ALTER TABLE contract_calloffs ENABLE ROW LEVEL SECURITY;
ALTER TABLE contract_calloffs FORCE ROW LEVEL SECURITY;
CREATE POLICY calloffs_in_scope ON contract_calloffs
    USING (EXISTS (SELECT 1 FROM contracts k WHERE k.id = contract_id))
    WITH CHECK (EXISTS (SELECT 1 FROM contracts k WHERE k.id = contract_id));

-- Who put a lot on hold, and when (the audit log has every hold and release too).
ALTER TABLE lots ADD COLUMN quarantined_at timestamptz, ADD COLUMN quarantined_by text;

GRANT SELECT, INSERT ON contract_calloffs TO stockpile_app;
GRANT DELETE ON demand_plans TO stockpile_app;
