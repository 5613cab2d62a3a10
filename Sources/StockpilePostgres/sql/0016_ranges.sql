-- Ranges (SPEC.md "Integrity rules": ranges). The service refuses every number outside its
-- documented range (StockpileCore/Ranges.swift) with 400 and the field; this is the second wall
-- behind it, and the arithmetic that can no longer overflow.

-- A sum as a quantity: numeric sums held at bigint's bounds instead of failing every read with
-- "bigint out of range" (one absurd pledge made every cover query of a city fail before).
CREATE FUNCTION stockpile_clamp(v numeric) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(greatest(v, -9223372036854775807), 9223372036854775807)::bigint
$$;

-- Stored reserves within their ranges from now on. NOT VALID: a value an older version let in is
-- not a failed migration; `stockpile check` reports it (below) until someone corrects it.
ALTER TABLE capacity_pledges ADD CONSTRAINT capacity_pledges_in_range
    CHECK (daily_capacity <= 100000000 AND ramp_up_days <= 3650) NOT VALID;
ALTER TABLE contracts ADD CONSTRAINT contracts_in_range
    CHECK (committed <= 10000000000 AND lead_time_days <= 3650) NOT VALID;
ALTER TABLE demand_plans ADD CONSTRAINT demand_plans_in_range CHECK (full_load_daily <= 1000000000) NOT VALID;
ALTER TABLE facilities ADD CONSTRAINT facilities_beds_in_range CHECK (beds <= 100000) NOT VALID;
ALTER TABLE items ADD CONSTRAINT items_days_in_range CHECK (target_days <= 3650 AND shelf_life_days <= 36500) NOT VALID;
ALTER TABLE category_targets ADD CONSTRAINT category_targets_in_range CHECK (target_days <= 3650) NOT VALID;

-- The ledger: one movement at most 10⁹ units, one lot at one facility at most 10¹² on hand,
-- whichever path wrote it (SP400 / SP409 with the column; HINT names the movement for a batch).
CREATE FUNCTION movements_range_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.requested > 1000000000 THEN
        RAISE EXCEPTION 'quantity % is more than 1000000000 in one movement', NEW.requested
            USING ERRCODE = 'SP400', COLUMN = 'quantity', HINT = 'movement ' || NEW.id;
    END IF;
    RAISE EXCEPTION 'this would leave % on hand of one lot at one facility; at most 1000000000000', NEW.balance_after
        USING ERRCODE = 'SP409', COLUMN = 'quantity', HINT = 'movement ' || NEW.id;
END $$;
CREATE TRIGGER movements_range_guard BEFORE INSERT ON movements
    FOR EACH ROW WHEN (NEW.requested > 1000000000 OR NEW.balance_after > 1000000000000) EXECUTE FUNCTION movements_range_guard();

-- Stored values outside the documented ranges (let in before them), for `stockpile check`.
CREATE FUNCTION stockpile_range_violations()
RETURNS TABLE (kind text, subject text, detail text) LANGUAGE sql STABLE AS $$
    SELECT 'range', 'capacity pledge ' || code, 'daily_capacity ' || daily_capacity || ', ramp_up_days ' || ramp_up_days
           || ' (at most 100000000 and 3650)'
    FROM capacity_pledges WHERE daily_capacity > 100000000 OR ramp_up_days > 3650
    UNION ALL
    SELECT 'range', 'contract ' || code, 'quantity ' || committed || ', lead_time_days ' || lead_time_days || ' (at most 10000000000 and 3650)'
    FROM contracts WHERE committed > 10000000000 OR lead_time_days > 3650
    UNION ALL
    SELECT 'range', 'demand plan ' || f.code || '/' || i.code, 'full_load_daily ' || d.full_load_daily || ' (at most 1000000000)'
    FROM demand_plans d JOIN facilities f ON f.id = d.facility_id JOIN items i ON i.id = d.item_id WHERE d.full_load_daily > 1000000000
    UNION ALL
    SELECT 'range', 'facility ' || code, 'beds ' || beds || ' (at most 100000)' FROM facilities WHERE beds > 100000
    UNION ALL
    SELECT 'range', 'item ' || code, 'target_days ' || coalesce(target_days::text, '-') || ', shelf_life_days '
           || coalesce(shelf_life_days::text, '-') || ' (at most 3650 and 36500)'
    FROM items WHERE target_days > 3650 OR shelf_life_days > 36500
    UNION ALL
    SELECT 'range', 'facility ' || f.code || ' lot ' || l.lot_number, 'on hand ' || b.quantity || ' (at most 1000000000000)'
    FROM balances b JOIN facilities f ON f.id = b.facility_id JOIN lots l ON l.id = b.lot_id WHERE b.quantity > 1000000000000
$$;
