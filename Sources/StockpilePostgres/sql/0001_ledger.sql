-- The stock ledger: master data, lots, the append-only movements ledger and the balances it feeds.
-- Applied once by `stockpile migrate` (and `serve` on start), as the schema owner.

-- The role the service works as: it may read and append to the ledger, never rewrite it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stockpile_app') THEN
        CREATE ROLE stockpile_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide: another database's migration created it meanwhile
END $$;
-- The owner switches to it on every service connection (options -c role=stockpile_app).
GRANT stockpile_app TO CURRENT_USER;

CREATE TABLE regions (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code <> ''),
    name        text NOT NULL,
    -- Deferred so a CSV may name a parent that appears later in the same file.
    parent_id   integer REFERENCES regions (id) DEFERRABLE INITIALLY DEFERRED,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX regions_parent ON regions (parent_id);

CREATE TABLE facilities (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code <> ''),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('hospital', 'cdc', 'clinic', 'warehouse')),
    region_id   integer NOT NULL REFERENCES regions (id),
    beds        integer NOT NULL DEFAULT 0 CHECK (beds >= 0),
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    designated  boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facilities_region ON facilities (region_id);

CREATE TABLE items (
    id              serial PRIMARY KEY,
    code            text NOT NULL UNIQUE CHECK (code <> ''),
    name            text NOT NULL,
    category        text NOT NULL CHECK (category IN ('ppe', 'drug', 'consumable', 'disinfectant', 'device', 'test_kit')),
    unit            text NOT NULL,
    target_days     integer CHECK (target_days > 0),
    shelf_life_days integer CHECK (shelf_life_days > 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A lot is an item's lot number with its expiry (NULL: does not expire).
CREATE TABLE lots (
    id          serial PRIMARY KEY,
    item_id     integer NOT NULL REFERENCES items (id),
    lot_number  text NOT NULL CHECK (lot_number <> ''),
    expiry      date,
    UNIQUE (item_id, lot_number)
);

-- The ledger. Append-only: stockpile_app has SELECT and INSERT only, and a trigger refuses
-- UPDATE and DELETE from anyone.
CREATE TABLE movements (
    id           uuid PRIMARY KEY,
    facility_id  integer NOT NULL REFERENCES facilities (id),
    item_id      integer NOT NULL REFERENCES items (id),
    lot_id       integer NOT NULL REFERENCES lots (id),
    kind         text NOT NULL CHECK (kind IN ('receipt', 'issue', 'adjustment', 'count', 'transfer_out', 'transfer_in')),
    -- The signed change to on-hand, in base units.
    quantity     bigint NOT NULL,
    -- What the client sent: the magnitude for receipt/issue/adjustment, the counted figure for count.
    requested    bigint NOT NULL CHECK (requested >= 0),
    -- On-hand of the lot at the facility right after this movement.
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    reason       text NOT NULL DEFAULT '',
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL,
    -- md5 of the request's canonical fields, to tell a replay (same) from a reused id (different).
    fingerprint  text NOT NULL,
    CHECK (kind <> 'receipt' OR quantity > 0),
    CHECK (kind <> 'issue' OR quantity < 0)
);
CREATE INDEX movements_position ON movements (facility_id, item_id, occurred_at);
CREATE INDEX movements_recorded ON movements (recorded_at, id);

CREATE FUNCTION movements_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the movements ledger is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER movements_append_only BEFORE UPDATE OR DELETE ON movements
    FOR EACH ROW EXECUTE FUNCTION movements_append_only();

-- On-hand per facility × lot, kept in the same transaction as every movement.
CREATE TABLE balances (
    facility_id integer NOT NULL REFERENCES facilities (id),
    lot_id      integer NOT NULL REFERENCES lots (id),
    item_id     integer NOT NULL REFERENCES items (id),
    quantity    bigint NOT NULL CHECK (quantity >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, lot_id)
);
CREATE INDEX balances_item ON balances (item_id, facility_id);

-- An adjustment adds stock when its reason code (the text before any ':', spaces trimmed) is
-- "found"; loss, damage and expired take it away. The service validates the code; this decides the sign.
CREATE FUNCTION adjustment_adds(p_reason text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT btrim(split_part(coalesce(p_reason, ''), ':', 1), E' \t') = 'found'
$$;

-- What a replay must match: the request's fields, as a row so no separator can make two different
-- requests look alike, and with dates as numbers so no session setting changes the text.
CREATE FUNCTION movement_fingerprint(p_kind text, p_facility text, p_item text, p_lot text, p_expiry date,
                                     p_quantity bigint, p_reason text, p_occurred_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(ROW(p_kind, p_facility, p_item, p_lot, p_expiry - DATE '2000-01-01', p_quantity, coalesce(p_reason, ''),
                   extract(epoch FROM p_occurred_at))::text)
$$;

-- Records one movement, exactly once. Returns the stored movement and whether it was a replay.
-- Errors carry a SQLSTATE the service maps to HTTP, and the offending field in COLUMN:
--   SP404 unknown facility, item or lot; SP409 an id reused with a different body, or not enough
--   stock; SP422 a lot's expiry contradicts the one on record.
CREATE FUNCTION record_movement(
    p_id uuid, p_facility text, p_item text, p_lot text, p_expiry date, p_kind text,
    p_quantity bigint, p_reason text, p_occurred_at timestamptz, p_recorded_by text,
    OUT movement_id uuid, OUT replay boolean, OUT quantity bigint, OUT balance_after bigint,
    OUT lot_expiry date, OUT recorded_at timestamptz, OUT occurred_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_facility integer;
    v_item     integer;
    v_lot      integer;
    v_expiry   date;
    v_onhand   bigint;
    v_delta    bigint;
    v_fp       text;
    v_existing movements%ROWTYPE;
BEGIN
    IF p_kind NOT IN ('receipt', 'issue', 'adjustment', 'count') THEN
        RAISE EXCEPTION 'kind must be receipt, issue, adjustment or count' USING ERRCODE = 'SP400', COLUMN = 'kind';
    END IF;
    v_delta := CASE p_kind
        WHEN 'receipt' THEN p_quantity
        WHEN 'issue' THEN -p_quantity
        WHEN 'adjustment' THEN CASE WHEN adjustment_adds(p_reason) THEN p_quantity ELSE -p_quantity END
        ELSE NULL END;
    v_fp := movement_fingerprint(p_kind, p_facility, p_item, p_lot, p_expiry, p_quantity, p_reason, p_occurred_at);

    SELECT * INTO v_existing FROM movements m WHERE m.id = p_id;
    IF FOUND THEN
        IF v_existing.fingerprint <> v_fp THEN
            RAISE EXCEPTION 'movement % was already recorded with a different body', p_id
                USING ERRCODE = 'SP409', COLUMN = 'id';
        END IF;
        SELECT l.expiry INTO lot_expiry FROM lots l WHERE l.id = v_existing.lot_id;
        movement_id := v_existing.id; replay := true; quantity := v_existing.quantity;
        balance_after := v_existing.balance_after; recorded_at := v_existing.recorded_at;
        occurred_at := v_existing.occurred_at;
        RETURN;
    END IF;

    SELECT f.id INTO v_facility FROM facilities f WHERE f.code = p_facility;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown facility %', p_facility USING ERRCODE = 'SP404', COLUMN = 'facility';
    END IF;
    SELECT i.id INTO v_item FROM items i WHERE i.code = p_item;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown item %', p_item USING ERRCODE = 'SP404', COLUMN = 'item';
    END IF;

    SELECT l.id, l.expiry INTO v_lot, v_expiry FROM lots l WHERE l.item_id = v_item AND l.lot_number = p_lot;
    IF NOT FOUND THEN
        -- Only movements that bring stock in may introduce a lot.
        IF coalesce(v_delta, 1) <= 0 THEN
            RAISE EXCEPTION 'unknown lot % of item %', p_lot, p_item USING ERRCODE = 'SP404', COLUMN = 'lot';
        END IF;
        INSERT INTO lots (item_id, lot_number, expiry) VALUES (v_item, p_lot, p_expiry)
            ON CONFLICT (item_id, lot_number) DO NOTHING;
        SELECT l.id, l.expiry INTO v_lot, v_expiry FROM lots l WHERE l.item_id = v_item AND l.lot_number = p_lot;
    END IF;
    IF p_expiry IS NOT NULL AND v_expiry IS DISTINCT FROM p_expiry THEN
        RAISE EXCEPTION 'lot % of item % expires on %, not %', p_lot, p_item, coalesce(v_expiry::text, 'never'), p_expiry
            USING ERRCODE = 'SP422', COLUMN = 'expiry';
    END IF;

    -- Lock the position's balance row (creating it at zero) so concurrent movements serialise here.
    INSERT INTO balances (facility_id, lot_id, item_id, quantity) VALUES (v_facility, v_lot, v_item, 0)
        ON CONFLICT (facility_id, lot_id) DO NOTHING;
    SELECT b.quantity INTO v_onhand FROM balances b
        WHERE b.facility_id = v_facility AND b.lot_id = v_lot FOR UPDATE;

    IF p_kind = 'count' THEN
        v_delta := p_quantity - v_onhand;
    ELSIF v_onhand + v_delta < 0 THEN
        RAISE EXCEPTION 'only % on hand of lot % of item % at facility %; cannot take %', v_onhand, p_lot, p_item, p_facility, -v_delta
            USING ERRCODE = 'SP409', COLUMN = 'quantity';
    END IF;

    INSERT INTO movements AS m (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason,
                                occurred_at, recorded_by, fingerprint)
        VALUES (p_id, v_facility, v_item, v_lot, p_kind, v_delta, p_quantity, v_onhand + v_delta, coalesce(p_reason, ''),
                coalesce(p_occurred_at, now()), p_recorded_by, v_fp)
        ON CONFLICT (id) DO NOTHING
        RETURNING m.recorded_at, m.occurred_at INTO recorded_at, occurred_at;
    IF NOT FOUND THEN
        -- The same id committed by a concurrent request while we waited for the balance lock.
        SELECT * INTO v_existing FROM movements m WHERE m.id = p_id;
        IF v_existing.fingerprint <> v_fp THEN
            RAISE EXCEPTION 'movement % was already recorded with a different body', p_id
                USING ERRCODE = 'SP409', COLUMN = 'id';
        END IF;
        movement_id := v_existing.id; replay := true; quantity := v_existing.quantity;
        balance_after := v_existing.balance_after; recorded_at := v_existing.recorded_at;
        occurred_at := v_existing.occurred_at; lot_expiry := v_expiry;
        RETURN;
    END IF;

    UPDATE balances b SET quantity = v_onhand + v_delta, updated_at = now()
        WHERE b.facility_id = v_facility AND b.lot_id = v_lot;

    movement_id := p_id; replay := false; quantity := v_delta; balance_after := v_onhand + v_delta;
    lot_expiry := v_expiry;
END $$;

GRANT USAGE ON SCHEMA public TO stockpile_app;
GRANT SELECT, INSERT, UPDATE ON regions, facilities, items, lots, balances TO stockpile_app;
GRANT SELECT, INSERT ON movements TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
GRANT SELECT ON schema_migrations TO stockpile_app;
