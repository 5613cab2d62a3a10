-- The national feed (issue 15, part 5; deploy/SCALE.md): each province's per-facility cover sums,
-- keyed by what is unique across provinces (the province's root region code and the facility
-- code, not this database's ids), for a national instance to receive by logical replication:
--   CREATE PUBLICATION stockpile_national FOR TABLE national_cover;   -- in the province (wal_level = logical)
-- Kept by triggers on cover_facility_sums, so it changes whenever the snapshot does (a refresh
-- after a movement, the nightly rebuild) and costs nothing else. A facility whose sums are
-- removed and written again in one refresh is sent as a delete and an insert.
CREATE TABLE national_cover (
    province               text NOT NULL,
    facility               text NOT NULL,
    category               text NOT NULL,
    facility_name          text NOT NULL,
    region                 text NOT NULL,
    designated             boolean NOT NULL,
    as_of                  date NOT NULL,
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
    PRIMARY KEY (province, facility, category)
);

CREATE FUNCTION national_cover_written() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
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

CREATE FUNCTION national_cover_removed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
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

CREATE TRIGGER national_cover_inserted AFTER INSERT ON cover_facility_sums
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION national_cover_written();
CREATE TRIGGER national_cover_deleted AFTER DELETE ON cover_facility_sums
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION national_cover_removed();
CREATE TRIGGER national_cover_truncated AFTER TRUNCATE ON cover_facility_sums
    FOR EACH STATEMENT EXECUTE FUNCTION national_cover_removed();

GRANT SELECT ON national_cover TO stockpile_app;

-- What is there already (a database migrated after its snapshot was built): written again, through the trigger.
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM cover_facility_sums) THEN
        CREATE TEMP TABLE sums_now ON COMMIT DROP AS SELECT * FROM cover_facility_sums;
        DELETE FROM cover_facility_sums;
        INSERT INTO cover_facility_sums SELECT * FROM sums_now;
    END IF;
END $$;
