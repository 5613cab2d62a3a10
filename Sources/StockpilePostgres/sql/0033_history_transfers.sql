-- Transfers in an imported history (issue 19). `stockpile export --movements` writes a
-- district's whole ledger to movements.csv, reallocation dispatches (transfer_out) and receipts
-- (transfer_in) among them: they move on-hand and decide stockout days, so a district moved to a new
-- server must get them back. Live transfers belong to an order line (record_transfer, 0012); a
-- history's come without their orders, which the files do not carry, so they are recorded as the
-- ledger movements they were, exactly once per id like every other movement.
--
-- Only a job or token of scope 'all' (the operator's import, an administrator's) may record one:
-- to anybody else a transfer without an order is stock conjured or made to vanish outside demand.
CREATE FUNCTION record_history_transfer(
    p_id uuid, p_facility text, p_item text, p_lot text, p_expiry date, p_kind text,
    p_quantity bigint, p_reason text, p_occurred_at timestamptz, p_recorded_by text,
    OUT replay boolean, OUT quantity bigint, OUT balance_after bigint)
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
    IF current_setting('stockpile.scope', true) IS DISTINCT FROM 'all' THEN
        RAISE EXCEPTION 'a transfer without its order is recorded only by an import of scope all' USING ERRCODE = '42501', COLUMN = 'kind';
    END IF;
    IF p_kind NOT IN ('transfer_out', 'transfer_in') OR p_quantity IS NULL OR p_quantity <= 0 THEN
        RAISE EXCEPTION 'a transfer is transfer_out or transfer_in of a positive quantity' USING ERRCODE = 'SP400', COLUMN = 'quantity';
    END IF;
    IF p_occurred_at IS NULL THEN
        RAISE EXCEPTION 'a transfer in a history needs the time it happened' USING ERRCODE = 'SP400', COLUMN = 'occurred_at';
    END IF;
    v_delta := CASE p_kind WHEN 'transfer_in' THEN p_quantity ELSE -p_quantity END;
    v_fp := movement_fingerprint(p_kind, p_facility, p_item, p_lot, p_expiry, p_quantity, p_reason, p_occurred_at);

    SELECT * INTO v_existing FROM movements m WHERE m.id = p_id;
    IF FOUND THEN
        IF v_existing.fingerprint <> v_fp THEN
            RAISE EXCEPTION 'movement % was already recorded with a different body', p_id USING ERRCODE = 'SP409', COLUMN = 'id';
        END IF;
        replay := true; quantity := v_existing.quantity; balance_after := v_existing.balance_after;
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
        -- A receipt from a donor outside the exported files brings its lot in, as a receipt would
        -- (lots_expiry_required of 0017 asks an expiring item's lot for its expiry).
        IF p_kind = 'transfer_out' THEN
            RAISE EXCEPTION 'unknown lot % of item %', p_lot, p_item USING ERRCODE = 'SP404', COLUMN = 'lot';
        END IF;
        INSERT INTO lots (item_id, lot_number, expiry) VALUES (v_item, p_lot, p_expiry) ON CONFLICT (item_id, lot_number) DO NOTHING;
        SELECT l.id, l.expiry INTO v_lot, v_expiry FROM lots l WHERE l.item_id = v_item AND l.lot_number = p_lot;
    END IF;
    IF p_expiry IS NOT NULL AND v_expiry IS DISTINCT FROM p_expiry THEN
        RAISE EXCEPTION 'lot % of item % expires on %, not %', p_lot, p_item, coalesce(v_expiry::text, 'never'), p_expiry
            USING ERRCODE = 'SP422', COLUMN = 'expiry';
    END IF;

    INSERT INTO balances (facility_id, lot_id, item_id, quantity) VALUES (v_facility, v_lot, v_item, 0)
        ON CONFLICT (facility_id, lot_id) DO NOTHING;
    SELECT b.quantity INTO v_onhand FROM balances b WHERE b.facility_id = v_facility AND b.lot_id = v_lot FOR UPDATE;
    IF v_onhand + v_delta < 0 THEN
        RAISE EXCEPTION 'only % on hand of lot % of item % at facility %; cannot dispatch %', v_onhand, p_lot, p_item, p_facility, p_quantity
            USING ERRCODE = 'SP409', COLUMN = 'quantity';
    END IF;
    INSERT INTO movements (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason, occurred_at,
                           recorded_by, fingerprint)
    VALUES (p_id, v_facility, v_item, v_lot, p_kind, v_delta, p_quantity, v_onhand + v_delta, coalesce(p_reason, ''), p_occurred_at,
            p_recorded_by, v_fp);
    UPDATE balances b SET quantity = v_onhand + v_delta, updated_at = now() WHERE b.facility_id = v_facility AND b.lot_id = v_lot;
    replay := false; quantity := v_delta; balance_after := v_onhand + v_delta;
END $$;
