-- Cover as it stood on a past date (issue 17, part 5): was lot p_lot held at facility p_facility
-- at instant p_at? A hold placed before then and not yet released, whose scope covers the
-- facility (as stockpile_lot_hold, sql/0015, for the present).
CREATE FUNCTION stockpile_lot_held_at(p_lot integer, p_facility integer, p_at timestamptz) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM lot_holds h JOIN facilities f ON f.id = p_facility
        WHERE h.lot_id = p_lot AND h.placed_at < p_at AND (h.released_at IS NULL OR h.released_at >= p_at)
          AND (h.region_id IS NULL OR stockpile_region_within(f.region_id, h.region_id)))
$$;
CREATE INDEX IF NOT EXISTS lot_holds_lot ON lot_holds (lot_id);
CREATE INDEX IF NOT EXISTS transit_movements_order ON transit_movements (order_id);
