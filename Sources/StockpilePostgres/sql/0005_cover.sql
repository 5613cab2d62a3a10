-- Days of cover at scale (SPEC.md "Cover"). Three parts:
--   1. configurable category targets;
--   2. the cover formulas in PL/pgSQL, the set-based path for many positions. StockpileCore has the
--      same formulas in Swift (the reference, used per position); a test on random data proves the
--      two agree;
--   3. a maintained snapshot of every position's cover for one as_of date (normally today), so the
--      command centre's whole-city queries read an index instead of recomputing millions of
--      positions. Every change that can move a position's numbers marks it dirty (triggers below);
--      readers refresh the dirty positions first, so the snapshot never answers with stale numbers.

CREATE TABLE category_targets (
    category    text PRIMARY KEY CHECK (category IN ('ppe', 'drug', 'consumable', 'disinfectant', 'device', 'test_kit')),
    target_days integer NOT NULL CHECK (target_days > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- SPEC.md: three months for infectious-disease protective equipment; everything else 30 days.
INSERT INTO category_targets (category, target_days) VALUES ('ppe', 90);

-- Round to 6 decimals, half away from zero (as Swift's rounded()), so noise cannot move a ceiling.
CREATE FUNCTION stockpile_round6(v double precision) RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT sign(v) * floor(abs(v) * 1000000 + 0.5) / 1000000
$$;

-- Observed daily demand over the 28-day window, stockout-adjusted. The position's history arrives
-- as buckets: day 0..27 are the window's days (T−28 … T−1), 28 gathers everything from T on (it only
-- moves the opening level). A day is a stockout day when on-hand was zero at its start and nothing
-- was received during it.
CREATE FUNCTION stockpile_observed_demand(p_on_hand bigint, p_days integer[], p_nets bigint[],
                                          p_received bigint[], p_issued bigint[])
RETURNS double precision LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := coalesce(cardinality(p_days), 0);
    level bigint := p_on_hand;
    k integer := 1;
    stocked integer := 0;
    issued bigint := 0;
BEGIN
    FOR j IN 1..n LOOP
        level := level - p_nets[j];   -- on-hand at the start of the window
    END LOOP;
    FOR day IN 0..27 LOOP
        IF k <= n AND p_days[k] = day THEN
            IF level > 0 OR p_received[k] > 0 THEN stocked := stocked + 1; END IF;
            issued := issued + p_issued[k];
            level := level + p_nets[k];
            k := k + 1;
        ELSIF level > 0 THEN
            stocked := stocked + 1;
        END IF;
    END LOOP;
    IF stocked = 0 THEN RETURN 0; END IF;
    RETURN issued::double precision / stocked;
END $$;

-- Every number of one position (PositionCover in StockpileCore). Lots arrive usable only and in
-- expiry order (no expiry last), with their days to expiry from T (NULL: never).
CREATE FUNCTION stockpile_position_cover(
    p_lot_q bigint[], p_lot_e integer[], p_observed double precision, p_full_load double precision,
    p_surge double precision, p_target integer, p_contract_qty bigint, p_capacity_qty bigint,
    OUT daily_demand double precision, OUT physical_qty bigint, OUT physical_days double precision,
    OUT expiring_qty double precision, OUT contract_days double precision, OUT capacity_days double precision,
    OUT total_days double precision, OUT shortfall_qty bigint, OUT contract_shortfall_qty bigint, OUT band text)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    d double precision := greatest(p_observed, coalesce(p_full_load, 0)) * p_surge;
    t double precision := 0;
    expiring double precision := 0;
    q double precision;
    lasts double precision;
    used double precision;
BEGIN
    -- A demand too small to tell from zero is zero: days stay unbounded, not infinite.
    IF NOT (d >= 1e-9 AND d < 'Infinity'::double precision) THEN d := 0; END IF;
    daily_demand := d;
    physical_qty := 0;
    FOR j IN 1..coalesce(cardinality(p_lot_q), 0) LOOP
        physical_qty := physical_qty + p_lot_q[j];
        CONTINUE WHEN d = 0;
        q := p_lot_q[j];
        lasts := q / d;
        IF p_lot_e[j] IS NULL THEN
            t := t + lasts;
        ELSE
            used := least(lasts, greatest(0, p_lot_e[j]::double precision - t));
            t := t + used;
            expiring := expiring + greatest(0, q - used * d);
        END IF;
    END LOOP;
    expiring_qty := stockpile_round6(expiring);
    IF d = 0 THEN
        shortfall_qty := 0; contract_shortfall_qty := 0; band := '>=N';
        RETURN;
    END IF;
    physical_days := t;
    contract_days := p_contract_qty::double precision / d;
    capacity_days := p_capacity_qty::double precision / d;
    total_days := physical_days + contract_days + capacity_days;
    shortfall_qty := ceil(stockpile_round6(greatest(0, p_target - physical_days) * d))::bigint;
    contract_shortfall_qty := ceil(stockpile_round6(greatest(0, p_target - contract_days) * d))::bigint;
    band := CASE WHEN t <= 0 THEN 'stockout' WHEN t < 3 THEN '<3d' WHEN t < 7 THEN '3-7d' WHEN t < 14 THEN '7-14d'
                 WHEN t < p_target THEN '14-N' ELSE '>=N' END;
END $$;

-- The snapshot: one as_of date at a time. It is derived data, so UNLOGGED (no WAL for millions of
-- rows); after a crash PostgreSQL empties all three tables together, and the service rebuilds.
CREATE UNLOGGED TABLE cover_snapshot (
    id          integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    as_of       date NOT NULL,
    time_zone   text NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now(),
    positions   bigint NOT NULL
);

CREATE UNLOGGED TABLE cover_positions (
    -- No foreign keys: a cache, rebuilt whole; they would only slow the rebuild.
    facility_id            integer NOT NULL,
    item_id                integer NOT NULL,
    -- Codes are kept here so the worst-first order (shortfall, then codes) is one index.
    facility_code          text COLLATE "C" NOT NULL,
    item_code              text COLLATE "C" NOT NULL,
    daily_demand           double precision NOT NULL,
    observed_demand        double precision NOT NULL,
    full_load_demand       double precision,
    target_days            integer NOT NULL,
    physical_qty           bigint NOT NULL,
    physical_days          double precision,
    expiring_qty           double precision NOT NULL,
    contract_qty           bigint NOT NULL,
    contract_days          double precision,
    capacity_qty           bigint NOT NULL,
    capacity_days          double precision,
    total_days             double precision,
    shortfall_qty          bigint NOT NULL,
    contract_shortfall_qty bigint NOT NULL,
    band                   text NOT NULL,
    PRIMARY KEY (facility_id, item_id)
);
CREATE INDEX cover_positions_worst ON cover_positions (shortfall_qty DESC, facility_code, item_code);
-- The other orders of the cover query; no demand (NULL days) sorts as the best cover, last.
CREATE INDEX cover_positions_physical ON cover_positions (physical_days NULLS LAST, facility_code, item_code);
CREATE INDEX cover_positions_total ON cover_positions (total_days NULLS LAST, facility_code, item_code);
CREATE INDEX cover_positions_codes ON cover_positions (facility_code, item_code);
CREATE INDEX cover_positions_items ON cover_positions (item_code, facility_code);

-- Sums per facility × item category, kept with the snapshot, so a city's roll-up reads tens of
-- thousands of rows instead of millions. Per facility (not per region) so moving a facility to
-- another region needs no upkeep: the roll-up joins the facility's region when it reads.
CREATE UNLOGGED TABLE cover_facility_sums (
    facility_id            integer NOT NULL,
    category               text NOT NULL,
    positions              bigint NOT NULL,
    daily_demand           double precision NOT NULL,
    physical_qty           bigint NOT NULL,
    expiring_qty           double precision NOT NULL,
    contract_qty           bigint NOT NULL,
    capacity_qty           bigint NOT NULL,
    shortfall_qty          bigint NOT NULL,
    contract_shortfall_qty bigint NOT NULL,
    stockout               bigint NOT NULL,
    under_3d               bigint NOT NULL,
    from_3_to_7d           bigint NOT NULL,
    from_7_to_14d          bigint NOT NULL,
    from_14d_to_target     bigint NOT NULL,
    at_target              bigint NOT NULL,
    PRIMARY KEY (facility_id, category)
);

-- Positions whose inputs changed since the snapshot computed them: an append-only list, no key,
-- so marking costs a movement one plain insert (a batch, one per statement). A refresh takes the
-- marks it can see and computes from the same statement's view of the ledger, so a change
-- committed meanwhile keeps its mark for the next refresh.
CREATE UNLOGGED TABLE cover_dirty (
    facility_id integer NOT NULL,
    item_id     integer NOT NULL
);

-- Statement-level for balances: a 1000-movement batch marks its positions in one statement.
CREATE FUNCTION cover_mark_balances() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id)
    SELECT DISTINCT facility_id, item_id FROM changed;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_balances AFTER UPDATE ON balances
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION cover_mark_balances();

-- Plans, contracts and pledges: the position they belong to (old and new, in case one moved).
CREATE FUNCTION cover_mark_position() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO cover_dirty (facility_id, item_id) VALUES (OLD.facility_id, OLD.item_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO cover_dirty (facility_id, item_id) VALUES (NEW.facility_id, NEW.item_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_demand AFTER INSERT OR UPDATE OR DELETE ON demand_plans
    FOR EACH ROW EXECUTE FUNCTION cover_mark_position();
CREATE TRIGGER cover_mark_contracts AFTER INSERT OR UPDATE OR DELETE ON contracts
    FOR EACH ROW EXECUTE FUNCTION cover_mark_position();
CREATE TRIGGER cover_mark_capacity AFTER INSERT OR UPDATE OR DELETE ON capacity_pledges
    FOR EACH ROW EXECUTE FUNCTION cover_mark_position();

-- A lot put on hold or released (or its expiry corrected) moves every position of its item:
-- marked from facilities, which has no row-level policy, so a command token's hold also refreshes
-- positions outside its own subtree (balances would show it only its own).
CREATE FUNCTION cover_mark_lot() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id) SELECT f.id, NEW.item_id FROM facilities f;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_lot AFTER UPDATE OF quarantined, expiry ON lots
    FOR EACH ROW WHEN (OLD.quarantined IS DISTINCT FROM NEW.quarantined OR OLD.expiry IS DISTINCT FROM NEW.expiry)
    EXECUTE FUNCTION cover_mark_lot();

-- A new facility or item brings new positions; an item's target or category moves all of its own.
-- Statement-level, so an import of thousands of facilities marks their positions in one statement.
CREATE FUNCTION cover_mark_new_facilities() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id) SELECT a.id, i.id FROM added a CROSS JOIN items i;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_facility AFTER INSERT ON facilities
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cover_mark_new_facilities();

CREATE FUNCTION cover_mark_new_items() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id) SELECT f.id, a.id FROM added a CROSS JOIN facilities f;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_item_new AFTER INSERT ON items
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cover_mark_new_items();

CREATE FUNCTION cover_mark_item() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id) SELECT f.id, NEW.id FROM facilities f;
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_item_target AFTER UPDATE OF target_days, category ON items
    FOR EACH ROW WHEN (OLD.target_days IS DISTINCT FROM NEW.target_days OR OLD.category IS DISTINCT FROM NEW.category)
    EXECUTE FUNCTION cover_mark_item();

-- A category's target: every position of its items.
CREATE FUNCTION cover_mark_category() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO cover_dirty (facility_id, item_id)
    SELECT f.id, i.id FROM items i CROSS JOIN facilities f
     WHERE i.category IN (CASE WHEN TG_OP <> 'DELETE' THEN NEW.category END, CASE WHEN TG_OP <> 'INSERT' THEN OLD.category END);
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_category AFTER INSERT OR UPDATE OR DELETE ON category_targets
    FOR EACH ROW EXECUTE FUNCTION cover_mark_category();

ALTER TABLE cover_facility_sums ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_facility_sums FORCE ROW LEVEL SECURITY;
CREATE POLICY cover_sums_in_scope ON cover_facility_sums USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));
ALTER TABLE cover_positions ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_positions FORCE ROW LEVEL SECURITY;
CREATE POLICY cover_in_scope ON cover_positions USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));

GRANT SELECT, INSERT, UPDATE, DELETE ON category_targets TO stockpile_app;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cover_snapshot, cover_positions, cover_facility_sums, cover_dirty TO stockpile_app;
