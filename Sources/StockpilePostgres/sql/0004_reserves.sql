-- Reserves and demand (SPEC.md "Domain model"): planned full-load demand, contract reserves,
-- capacity pledges, and quarantine of lots. Cover is computed from these and the ledger.

-- Full-load (满负荷) daily demand per facility × item, entered or derived from beds.
CREATE TABLE demand_plans (
    facility_id     integer NOT NULL REFERENCES facilities (id),
    item_id         integer NOT NULL REFERENCES items (id),
    full_load_daily numeric NOT NULL CHECK (full_load_daily >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, item_id)
);

CREATE TABLE contracts (
    id             serial PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code <> ''),
    facility_id    integer NOT NULL REFERENCES facilities (id),
    item_id        integer NOT NULL REFERENCES items (id),
    supplier       text NOT NULL,
    committed      bigint NOT NULL CHECK (committed >= 0),
    called_off     bigint NOT NULL DEFAULT 0 CHECK (called_off >= 0 AND called_off <= committed),
    lead_time_days integer NOT NULL CHECK (lead_time_days >= 0),
    valid_from     date NOT NULL,
    valid_to       date NOT NULL CHECK (valid_to >= valid_from),
    local          boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contracts_position ON contracts (facility_id, item_id);

CREATE TABLE capacity_pledges (
    id             serial PRIMARY KEY,
    code           text NOT NULL UNIQUE CHECK (code <> ''),
    facility_id    integer NOT NULL REFERENCES facilities (id),
    item_id        integer NOT NULL REFERENCES items (id),
    manufacturer   text NOT NULL,
    daily_capacity bigint NOT NULL CHECK (daily_capacity >= 0),
    ramp_up_days   integer NOT NULL CHECK (ramp_up_days >= 0),
    valid_from     date NOT NULL,
    valid_to       date NOT NULL CHECK (valid_to >= valid_from),
    certified      boolean NOT NULL DEFAULT false,
    local          boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX capacity_position ON capacity_pledges (facility_id, item_id);

-- A lot on hold (quality inspection, recall) is not usable anywhere until released.
ALTER TABLE lots ADD COLUMN quarantined boolean NOT NULL DEFAULT false,
                 ADD COLUMN quarantine_reason text;

ALTER TABLE demand_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE demand_plans FORCE ROW LEVEL SECURITY;
CREATE POLICY demand_in_scope ON demand_plans USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));
ALTER TABLE contracts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contracts FORCE ROW LEVEL SECURITY;
CREATE POLICY contracts_in_scope ON contracts USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));
ALTER TABLE capacity_pledges ENABLE ROW LEVEL SECURITY;
ALTER TABLE capacity_pledges FORCE ROW LEVEL SECURITY;
CREATE POLICY capacity_in_scope ON capacity_pledges USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));

GRANT SELECT, INSERT, UPDATE ON demand_plans, contracts, capacity_pledges TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
