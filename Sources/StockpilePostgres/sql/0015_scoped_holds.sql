-- Holds that hold, with a scope (SPEC.md "Integrity rules": holds).
--
-- A hold (recall 召回, quarantine 待检) stops a lot from being issued, dispatched or planned
-- wherever it applies: an administrator's everywhere (region_id NULL), a command token's in its
-- region's subtree. Only the same or a wider scope lifts it. lots.quarantined stays as "some hold
-- on this lot is active", kept by the trigger below, so the queries over millions of balances
-- look a hold's scope up only for the rare lots that have one.

CREATE TABLE lot_holds (
    id          bigserial PRIMARY KEY,
    lot_id      integer NOT NULL REFERENCES lots (id),
    region_id   integer REFERENCES regions (id),      -- NULL: everywhere
    reason      text NOT NULL CHECK (reason <> ''),
    placed_at   timestamptz NOT NULL DEFAULT now(),
    placed_by   text NOT NULL,
    released_at timestamptz,
    released_by text
);
-- One active hold per lot and scope: holding again where it is held keeps the first.
CREATE UNIQUE INDEX lot_holds_active ON lot_holds (lot_id, coalesce(region_id, 0)) WHERE released_at IS NULL;

-- The holds placed before scopes existed applied everywhere.
INSERT INTO lot_holds (lot_id, region_id, reason, placed_at, placed_by)
SELECT l.id, NULL, coalesce(nullif(l.quarantine_reason, ''), 'hold'), coalesce(l.quarantined_at, now()), coalesce(l.quarantined_by, 'migration')
FROM lots l WHERE l.quarantined;

-- Is region p_region p_ancestor or below it? (UNION, not UNION ALL: a cycle in the tree ends the walk.)
CREATE FUNCTION stockpile_region_within(p_region integer, p_ancestor integer) RETURNS boolean LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id, parent_id) AS (
        SELECT r.id, r.parent_id FROM regions r WHERE r.id = p_region
        UNION
        SELECT r.id, r.parent_id FROM regions r JOIN up ON r.id = up.parent_id
    )
    SELECT EXISTS (SELECT 1 FROM up WHERE up.id = p_ancestor)
$$;

-- The active hold on a lot that applies at a facility (the widest first), if any.
CREATE FUNCTION stockpile_lot_hold(p_lot integer, p_facility integer) RETURNS lot_holds LANGUAGE sql STABLE AS $$
    SELECT h.* FROM lot_holds h JOIN facilities f ON f.id = p_facility
    WHERE h.lot_id = p_lot AND h.released_at IS NULL
      AND (h.region_id IS NULL OR stockpile_region_within(f.region_id, h.region_id))
    ORDER BY h.region_id NULLS FIRST, h.id LIMIT 1
$$;

CREATE FUNCTION stockpile_lot_held(p_lot integer, p_facility integer) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (stockpile_lot_hold(p_lot, p_facility)).id IS NOT NULL
$$;

-- lots.quarantined follows the active holds, and every position of the item is marked for cover
-- (a hold's scope may change which facilities may use the lot while the flag stays the same).
CREATE FUNCTION lot_holds_follow() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_active lot_holds;
    v_scope text := current_setting('stockpile.scope', true);
BEGIN
    -- Serialise the lot's hold changes: two at once (a hold and a release) could each compute the
    -- flag from a view without the other's row, and the last write would leave a hold unflagged.
    PERFORM 1 FROM lots l WHERE l.id = NEW.lot_id FOR UPDATE;
    -- Every active hold, not only those the caller's scope sees (row-level security below binds the
    -- owner too): another district's hold keeps the flag up.
    PERFORM set_config('stockpile.scope', 'all', true);
    SELECT h.* INTO v_active FROM lot_holds h WHERE h.lot_id = NEW.lot_id AND h.released_at IS NULL
    ORDER BY h.region_id NULLS FIRST, h.id LIMIT 1;
    PERFORM set_config('stockpile.scope', coalesce(v_scope, ''), true);
    UPDATE lots l SET quarantined = v_active.id IS NOT NULL, quarantine_reason = v_active.reason,
                      quarantined_at = v_active.placed_at, quarantined_by = v_active.placed_by
    WHERE l.id = NEW.lot_id;
    INSERT INTO cover_dirty (facility_id, item_id) SELECT f.id, l.item_id FROM facilities f, lots l WHERE l.id = NEW.lot_id;
    RETURN NULL;
END $$;
CREATE TRIGGER lot_holds_follow AFTER INSERT OR UPDATE ON lot_holds FOR EACH ROW EXECUTE FUNCTION lot_holds_follow();

-- The second wall: an issue or a transfer out of a lot held at that facility is refused in SQL too,
-- whichever path wrote it (SP423, column "lot"; HINT names the movement so a batch can say which).
-- Adjustments and counts stay allowed: a recalled lot is counted, and written off as damage or loss.
CREATE FUNCTION movements_hold_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_hold lot_holds;
    v_lot text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM lots l WHERE l.id = NEW.lot_id AND l.quarantined) THEN
        RETURN NEW;
    END IF;
    v_hold := stockpile_lot_hold(NEW.lot_id, NEW.facility_id);
    IF v_hold.id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT l.lot_number INTO v_lot FROM lots l WHERE l.id = NEW.lot_id;
    RAISE EXCEPTION 'lot % is held (hold %: %, placed by % on %); it cannot be issued or dispatched until released',
        v_lot, v_hold.id, v_hold.reason, v_hold.placed_by, to_char(v_hold.placed_at, 'YYYY-MM-DD')
        USING ERRCODE = 'SP423', COLUMN = 'lot', HINT = 'movement ' || NEW.id;
END $$;
CREATE TRIGGER movements_hold_guard BEFORE INSERT ON movements
    FOR EACH ROW WHEN (NEW.kind IN ('issue', 'transfer_out')) EXECUTE FUNCTION movements_hold_guard();

-- A hold is visible where it applies: everywhere for an administrator's, else to scopes holding a
-- facility in its region's subtree (another district's hold on a shared lot is its own business).
-- Placing and lifting (the second wall behind the service's own check): only a scope that covers the
-- hold's whole region — everything for an administrator's — may write it.
CREATE FUNCTION stockpile_covers_region(p_region integer) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT current_setting('stockpile.scope', true) = 'all'
        OR (p_region IS NOT NULL AND NOT EXISTS (SELECT 1 FROM facilities f
                                                 WHERE stockpile_region_within(f.region_id, p_region) AND NOT stockpile_in_scope(f.id)))
$$;
ALTER TABLE lot_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE lot_holds FORCE ROW LEVEL SECURITY;
CREATE POLICY lot_holds_visible ON lot_holds FOR SELECT
    USING (region_id IS NULL OR current_setting('stockpile.scope', true) = 'all'
           OR EXISTS (SELECT 1 FROM facilities f WHERE stockpile_in_scope(f.id) AND stockpile_region_within(f.region_id, lot_holds.region_id)));
CREATE POLICY lot_holds_place ON lot_holds FOR INSERT WITH CHECK (stockpile_covers_region(region_id));
CREATE POLICY lot_holds_lift ON lot_holds FOR UPDATE USING (stockpile_covers_region(region_id)) WITH CHECK (stockpile_covers_region(region_id));

GRANT SELECT, INSERT, UPDATE ON lot_holds TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
