-- Roll-ups by item at city scale (issue 18, part 1). "N95 across the city" summed 3 million
-- positions per request (4 s at 10,000 × 300). The snapshot now also keeps, per item, the sums of
-- each region's own facilities, designated and not apart: a roll-up by item (or by region, for one
-- item) reads a few hundred rows per region instead of every position.
--
-- Kept with the snapshot: the rebuild fills it, and a refresh recomputes the (region, designated,
-- item) groups whose positions it rewrote, in the same transaction.
CREATE TABLE cover_region_item_sums (
    region_id              integer NOT NULL,
    designated             boolean NOT NULL,
    item_id                integer NOT NULL,
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
    PRIMARY KEY (region_id, item_id, designated)
);

-- The regions whose own facilities the request's scope holds, every one of them: a region's sums
-- are its facilities' together, so a scope holding only some of them may not read them. Computed
-- once per query (the policy below is an uncorrelated subquery), from facilities, which has no
-- row-level policy, so no region is covered by facilities the scope cannot see.
CREATE FUNCTION stockpile_covered_regions() RETURNS SETOF integer LANGUAGE sql STABLE AS $$
    SELECT f.region_id
    FROM facilities f
    LEFT JOIN unnest(CASE WHEN current_setting('stockpile.scope', true) = 'facilities'
                          THEN coalesce(nullif(current_setting('stockpile.facility_ids', true), ''), '{}')::integer[] END) AS s (id)
           ON s.id = f.id
    WHERE current_setting('stockpile.scope', true) IN ('all', 'facilities')
    GROUP BY f.region_id
    HAVING current_setting('stockpile.scope', true) = 'all' OR bool_and(s.id IS NOT NULL)
$$;

ALTER TABLE cover_region_item_sums ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_region_item_sums FORCE ROW LEVEL SECURITY;
-- An administrator's scope (the service's own jobs too) covers every region without computing it.
CREATE POLICY cover_item_sums_covered ON cover_region_item_sums
    USING (current_setting('stockpile.scope', true) = 'all' OR region_id IN (SELECT stockpile_covered_regions()))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all' OR region_id IN (SELECT stockpile_covered_regions()));
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON cover_region_item_sums TO stockpile_app;

-- A facility moved to another region, or designated or no longer: its positions move to another
-- group. Its positions are marked, so the refresh recomputes the group it joins; the group it left
-- is dropped and its remaining facilities' positions marked, so it is recomputed without it (or
-- stays dropped when it was the last).
CREATE FUNCTION cover_mark_moved_facility() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_scope text := current_setting('stockpile.scope', true);
BEGIN
    -- The whole group, whatever the caller's scope covers (row-level security binds the owner too).
    PERFORM set_config('stockpile.scope', 'all', true);
    DELETE FROM cover_region_item_sums WHERE region_id = OLD.region_id AND designated = OLD.designated;
    PERFORM set_config('stockpile.scope', coalesce(v_scope, ''), true);
    INSERT INTO cover_dirty (facility_id, item_id)
    SELECT f.id, i.id FROM facilities f CROSS JOIN items i
     WHERE f.id = NEW.id OR (f.region_id = OLD.region_id AND f.designated = OLD.designated);
    RETURN NULL;
END $$;
CREATE TRIGGER cover_mark_moved_facility AFTER UPDATE OF region_id, designated ON facilities
    FOR EACH ROW WHEN (OLD.region_id IS DISTINCT FROM NEW.region_id OR OLD.designated IS DISTINCT FROM NEW.designated)
    EXECUTE FUNCTION cover_mark_moved_facility();

-- Filled from the snapshot as it stands (the rebuild refills it from here on).
SELECT set_config('stockpile.scope', 'all', true);
INSERT INTO cover_region_item_sums
SELECT f.region_id, f.designated, cp.item_id, count(*), sum(cp.daily_demand), stockpile_clamp(sum(cp.physical_qty)), sum(cp.expiring_qty),
       stockpile_clamp(sum(cp.contract_qty)), stockpile_clamp(sum(cp.capacity_qty)), stockpile_clamp(sum(cp.shortfall_qty)),
       stockpile_clamp(sum(cp.contract_shortfall_qty)),
       count(*) FILTER (WHERE cp.band = 'stockout'), count(*) FILTER (WHERE cp.band = '<3d'),
       count(*) FILTER (WHERE cp.band = '3-7d'), count(*) FILTER (WHERE cp.band = '7-14d'),
       count(*) FILTER (WHERE cp.band = '14-N'), count(*) FILTER (WHERE cp.band = '>=N')
FROM cover_positions cp JOIN facilities f ON f.id = cp.facility_id
GROUP BY f.region_id, f.designated, cp.item_id;
