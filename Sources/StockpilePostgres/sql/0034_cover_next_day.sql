-- The next day's cover snapshot, built ahead (issue 18, part 5). At 10,000 facilities × 300 items a
-- new day's snapshot takes minutes to build, and until it exists every request computes cover
-- directly, which takes minutes for a city-wide question. Now, late in the evening, the service
-- builds tomorrow's snapshot into a second set of tables, keeps it refreshed with the same dirty
-- marks, and at midnight the two sets change names in one short transaction: the first request of
-- the new day reads a snapshot that is already there.
--
-- The second set is the first's twin: the same columns, indexes, row-level policies, grants and
-- triggers. The names swap, so either physical table may be the live one on a given day. A later
-- migration that changes one of these tables must change its twin (`…_next`) the same way.

CREATE TABLE cover_positions_next (LIKE cover_positions INCLUDING ALL);
CREATE TABLE cover_facility_sums_next (LIKE cover_facility_sums INCLUDING ALL);
CREATE TABLE cover_region_item_sums_next (LIKE cover_region_item_sums INCLUDING ALL);

-- Row-level security and its policies, copied from each live table.
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN SELECT c.relname AS live, pol.polname AS name, pol.polcmd, pg_get_expr(pol.polqual, pol.polrelid) AS qual,
                    pg_get_expr(pol.polwithcheck, pol.polrelid) AS withcheck
             FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
             WHERE c.relname IN ('cover_positions', 'cover_facility_sums', 'cover_region_item_sums')
    LOOP
        EXECUTE format('CREATE POLICY %I ON %I FOR %s%s%s', p.name, p.live || '_next',
                       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                       CASE WHEN p.qual IS NOT NULL THEN ' USING (' || p.qual || ')' ELSE '' END,
                       CASE WHEN p.withcheck IS NOT NULL THEN ' WITH CHECK (' || p.withcheck || ')' ELSE '' END);
    END LOOP;
END $$;
ALTER TABLE cover_positions_next ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_positions_next FORCE ROW LEVEL SECURITY;
ALTER TABLE cover_facility_sums_next ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_facility_sums_next FORCE ROW LEVEL SECURITY;
ALTER TABLE cover_region_item_sums_next ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_region_item_sums_next FORCE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cover_positions_next, cover_facility_sums_next, cover_region_item_sums_next TO stockpile_app;

-- The national feed's triggers (0021) go on both sums tables, and act only for the one named
-- cover_facility_sums, the live one: building tomorrow's sums sends nothing. The switch sends the
-- new day's sums whole (national_cover_reload).
CREATE OR REPLACE FUNCTION national_cover_written() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_TABLE_NAME <> 'cover_facility_sums' THEN
        RETURN NULL;
    END IF;
    WITH RECURSIVE root AS (
        SELECT id, code AS province FROM regions WHERE parent_id IS NULL
        UNION ALL SELECT r.id, root.province FROM regions r JOIN root ON r.parent_id = root.id
    )
    INSERT INTO national_cover
    SELECT root.province, f.code, s.category, f.name, r.code, f.designated, coalesce(cs.as_of, current_date),
           s.positions, s.daily_demand, s.physical_qty, s.expiring_qty, s.contract_qty, s.capacity_qty, s.shortfall_qty,
           s.contract_shortfall_qty, s.stockout, s.under_3d
    FROM written s JOIN facilities f ON f.id = s.facility_id JOIN regions r ON r.id = f.region_id
    JOIN root ON root.id = f.region_id LEFT JOIN cover_snapshot cs ON true
    ON CONFLICT (province, facility, category) DO UPDATE SET
        facility_name = EXCLUDED.facility_name, region = EXCLUDED.region, designated = EXCLUDED.designated,
        as_of = EXCLUDED.as_of, positions = EXCLUDED.positions, daily_demand = EXCLUDED.daily_demand,
        physical_qty = EXCLUDED.physical_qty, expiring_qty = EXCLUDED.expiring_qty, contract_qty = EXCLUDED.contract_qty,
        capacity_qty = EXCLUDED.capacity_qty, shortfall_qty = EXCLUDED.shortfall_qty,
        contract_shortfall_qty = EXCLUDED.contract_shortfall_qty, stockout = EXCLUDED.stockout, under_3d = EXCLUDED.under_3d;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION national_cover_removed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_TABLE_NAME <> 'cover_facility_sums' THEN
        RETURN NULL;
    END IF;
    -- Only this database's own provinces: on the national instance, which runs Stockpile too, the
    -- rows the provinces send are not its snapshot's to remove.
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM national_cover WHERE province IN (SELECT code FROM regions WHERE parent_id IS NULL);
    ELSE
        DELETE FROM national_cover n USING removed s JOIN facilities f ON f.id = s.facility_id
        WHERE n.facility = f.code AND n.category = s.category
          AND n.province IN (SELECT code FROM regions WHERE parent_id IS NULL);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER national_cover_inserted AFTER INSERT ON cover_facility_sums_next
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION national_cover_written();
CREATE TRIGGER national_cover_deleted AFTER DELETE ON cover_facility_sums_next
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION national_cover_removed();
CREATE TRIGGER national_cover_truncated AFTER TRUNCATE ON cover_facility_sums_next
    FOR EACH STATEMENT EXECUTE FUNCTION national_cover_removed();

-- The feed after the switch: this database's provinces' rows, all from the new live sums.
CREATE FUNCTION national_cover_reload() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    PERFORM set_config('stockpile.scope', 'all', true);
    DELETE FROM national_cover WHERE province IN (SELECT code FROM regions WHERE parent_id IS NULL);
    WITH RECURSIVE root AS (
        SELECT id, code AS province FROM regions WHERE parent_id IS NULL
        UNION ALL SELECT r.id, root.province FROM regions r JOIN root ON r.parent_id = root.id
    )
    INSERT INTO national_cover
    SELECT root.province, f.code, s.category, f.name, r.code, f.designated, coalesce(cs.as_of, current_date),
           s.positions, s.daily_demand, s.physical_qty, s.expiring_qty, s.contract_qty, s.capacity_qty, s.shortfall_qty,
           s.contract_shortfall_qty, s.stockout, s.under_3d
    FROM cover_facility_sums s JOIN facilities f ON f.id = s.facility_id JOIN regions r ON r.id = f.region_id
    JOIN root ON root.id = f.region_id LEFT JOIN cover_snapshot cs ON true;
END $$;

-- What the next set holds: a date, once built (built_at NULL while it is being built). While a row
-- is here, the live refresh copies every dirty mark it takes into cover_dirty_next, so tomorrow's
-- snapshot hears of every change after the moment its build read the ledger.
CREATE TABLE cover_snapshot_next (
    id          integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    as_of       date NOT NULL,
    time_zone   text NOT NULL,
    built_at    timestamptz,
    positions   bigint NOT NULL DEFAULT 0
);
CREATE TABLE cover_dirty_next (LIKE cover_dirty INCLUDING ALL);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cover_snapshot_next, cover_dirty_next TO stockpile_app;

-- A facility that changes group drops the group it left from both item-sums tables (0032 dropped it
-- from the live one only; tomorrow's would have kept a group with no facility left in it).
CREATE OR REPLACE FUNCTION cover_mark_moved_facility() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_scope text := current_setting('stockpile.scope', true);
BEGIN
    PERFORM set_config('stockpile.scope', 'all', true);
    DELETE FROM cover_region_item_sums WHERE region_id = OLD.region_id AND designated = OLD.designated;
    DELETE FROM cover_region_item_sums_next WHERE region_id = OLD.region_id AND designated = OLD.designated;
    PERFORM set_config('stockpile.scope', coalesce(v_scope, ''), true);
    INSERT INTO cover_dirty (facility_id, item_id)
    SELECT f.id, i.id FROM facilities f CROSS JOIN items i
     WHERE f.id = NEW.id OR (f.region_id = OLD.region_id AND f.designated = OLD.designated);
    RETURN NULL;
END $$;
