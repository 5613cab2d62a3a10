-- Conservation across the two ledgers (SPEC.md "Integrity rules": conservation).
--
-- Until now dispatch and receipt wrote their transfer_out / transfer_in movements under ids
-- computed as md5('stockpile/dispatch/<order>/<line>'), in the same id space clients choose
-- freely, and record_transfer skipped an id it found taken. A clerk who recorded any movement
-- under that id first made the dispatch move stock into transit without taking it from the donor.
--
-- Now a transfer movement belongs to its order line through transfer_movements (one per line and
-- kind: a key that only the order's own dispatch and receipt write, through record_transfer), and
-- its movement id is random, drawn by the server. A transfer that finds its
-- line's movement already there with another facility, lot or quantity fails the whole step.

CREATE TABLE transfer_movements (
    order_id    bigint NOT NULL,
    line_no     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('transfer_out', 'transfer_in')),
    movement_id uuid NOT NULL UNIQUE REFERENCES movements (id),
    PRIMARY KEY (order_id, line_no, kind),
    FOREIGN KEY (order_id, line_no) REFERENCES reallocation_lines (order_id, line_no)
);
CREATE TRIGGER transfer_movements_append_only BEFORE UPDATE OR DELETE ON transfer_movements
    FOR EACH ROW EXECUTE FUNCTION stockpile_append_only();

-- The transfers recorded before this migration, under the old computed ids, joined to their lines.
-- Only a movement of the transfer's own kind counts: one a client recorded under such an id first
-- (a receipt, an issue) is not the transfer, and `stockpile check` names its line as broken.
-- The migration runs as the owner, whom row-level security (FORCE) also binds: see everything.
SELECT set_config('stockpile.scope', 'all', true);
INSERT INTO transfer_movements (order_id, line_no, kind, movement_id)
SELECT rl.order_id, rl.line_no, k.kind, m.id
FROM reallocation_lines rl
CROSS JOIN (VALUES ('transfer_out', 'dispatch'), ('transfer_in', 'receipt')) AS k(kind, word)
JOIN movements m ON m.id = md5('stockpile/' || k.word || '/' || rl.order_id || '/' || rl.line_no)::uuid AND m.kind = k.kind;

DROP FUNCTION record_transfer(uuid, integer, integer, text, bigint, text, text);

-- A transfer of an order line at one facility and lot, exactly once per (order, line, kind):
-- transfer_out takes stock (never below zero: SP409 names what is on hand), transfer_in brings it.
-- Returns false when the line's transfer of that kind is already recorded with the same facility,
-- lot and quantity; raises SP409 (column "id") when it is recorded with any other.
CREATE FUNCTION record_transfer(p_order bigint, p_line integer, p_kind text, p_facility_id integer, p_lot_id integer,
                                p_quantity bigint, p_reason text, p_recorded_by text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_item integer; v_lot text; v_expiry date; v_facility text; v_item_code text;
    v_onhand bigint; v_delta bigint; v_id uuid; v_now timestamptz := now();
    v_existing movements%ROWTYPE;
BEGIN
    IF p_kind NOT IN ('transfer_out', 'transfer_in') OR p_quantity IS NULL OR p_quantity <= 0 THEN
        RAISE EXCEPTION 'a transfer is transfer_out or transfer_in of a positive quantity' USING ERRCODE = 'SP400';
    END IF;
    v_delta := CASE p_kind WHEN 'transfer_in' THEN p_quantity ELSE -p_quantity END;
    -- Serialise the line's transfers of this kind: the order row is locked by the caller, but this
    -- function must hold on its own too.
    PERFORM pg_advisory_xact_lock(hashtextextended('stockpile/transfer/' || p_order || '/' || p_line || '/' || p_kind, 0));
    SELECT m.* INTO v_existing FROM transfer_movements t JOIN movements m ON m.id = t.movement_id
     WHERE t.order_id = p_order AND t.line_no = p_line AND t.kind = p_kind;
    IF FOUND THEN
        IF v_existing.facility_id = p_facility_id AND v_existing.lot_id = p_lot_id AND v_existing.quantity = v_delta THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'the % of order % line % is already recorded as % of lot id % at facility id %, not %',
            p_kind, p_order, p_line, v_existing.quantity, v_existing.lot_id, v_existing.facility_id, v_delta
            USING ERRCODE = 'SP409', COLUMN = 'id';
    END IF;

    SELECT l.item_id, l.lot_number, l.expiry INTO v_item, v_lot, v_expiry FROM lots l WHERE l.id = p_lot_id;
    SELECT f.code INTO v_facility FROM facilities f WHERE f.id = p_facility_id;
    SELECT i.code INTO v_item_code FROM items i WHERE i.id = v_item;
    INSERT INTO balances (facility_id, lot_id, item_id, quantity) VALUES (p_facility_id, p_lot_id, v_item, 0)
        ON CONFLICT (facility_id, lot_id) DO NOTHING;
    SELECT b.quantity INTO v_onhand FROM balances b WHERE b.facility_id = p_facility_id AND b.lot_id = p_lot_id FOR UPDATE;
    IF v_onhand + v_delta < 0 THEN
        RAISE EXCEPTION 'only % on hand of lot % of item % at facility %; cannot dispatch %', v_onhand, v_lot, v_item_code, v_facility, p_quantity
            USING ERRCODE = 'SP409', COLUMN = 'quantity';
    END IF;
    -- A random id: nothing a client could have predicted and taken first.
    v_id := gen_random_uuid();
    INSERT INTO movements (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason, occurred_at,
                           recorded_by, fingerprint)
    VALUES (v_id, p_facility_id, v_item, p_lot_id, p_kind, v_delta, p_quantity, v_onhand + v_delta, coalesce(p_reason, ''), v_now,
            p_recorded_by, movement_fingerprint(p_kind, v_facility, v_item_code, v_lot, v_expiry, p_quantity, p_reason, v_now));
    INSERT INTO transfer_movements (order_id, line_no, kind, movement_id) VALUES (p_order, p_line, p_kind, v_id);
    UPDATE balances b SET quantity = v_onhand + v_delta, updated_at = v_now
        WHERE b.facility_id = p_facility_id AND b.lot_id = p_lot_id;
    RETURN true;
END $$;

-- What `stockpile check` proves, one row per broken fact (none: the stock is conserved):
--   ledger        a facility × lot whose movements do not sum to its balance;
--   transit       an order line whose transit ledger does not sum to what is in transit;
--   dispatch      a dispatched line without exactly its transfer_out at the donor, or whose transit
--                 dispatch differs from the line's quantity;
--   receipt       a received line whose transfer_in at the receiver, transit receipt and received
--                 figure disagree, or where dispatched ≠ received + lost + still in transit;
--   not_shipped   a line of an order never dispatched that has transfers or transit movements;
--   lot           a lot whose movements of both ledgers do not sum to on hand plus in transit.
-- Runs as the owner or with scope 'all': the caller sets the scope.
CREATE FUNCTION stockpile_integrity_violations()
RETURNS TABLE (kind text, subject text, detail text) LANGUAGE sql STABLE AS $$
    WITH ledger AS (
        SELECT m.facility_id, m.lot_id, sum(m.quantity) AS total FROM movements m GROUP BY 1, 2
    ), line AS (
        SELECT o.id AS order_id, rl.line_no, o.status, o.from_facility_id, o.to_facility_id, rl.lot_id, rl.quantity, rl.received,
               coalesce(tr.dispatched, 0) AS dispatched, coalesce(-tr.received, 0) AS transit_received,
               coalesce(-tr.lost, 0) AS lost, coalesce(tr.movements, 0) AS transit_movements, coalesce(it.quantity, 0) AS in_transit,
               tout.facility_id AS out_facility, tout.lot_id AS out_lot, -tout.quantity AS out_qty,
               tin.facility_id AS in_facility, tin.lot_id AS in_lot, tin.quantity AS in_qty
        FROM reallocation_orders o JOIN reallocation_lines rl ON rl.order_id = o.id
        LEFT JOIN (SELECT t.order_id, t.line_no, count(*) AS movements,
                          sum(t.quantity) FILTER (WHERE t.kind = 'dispatch') AS dispatched,
                          sum(t.quantity) FILTER (WHERE t.kind = 'receipt') AS received,
                          sum(t.quantity) FILTER (WHERE t.kind = 'loss') AS lost
                   FROM transit_movements t GROUP BY 1, 2) tr ON tr.order_id = rl.order_id AND tr.line_no = rl.line_no
        LEFT JOIN in_transit it ON it.order_id = rl.order_id AND it.line_no = rl.line_no
        LEFT JOIN (transfer_movements xo JOIN movements tout ON tout.id = xo.movement_id)
               ON xo.order_id = rl.order_id AND xo.line_no = rl.line_no AND xo.kind = 'transfer_out'
        LEFT JOIN (transfer_movements xi JOIN movements tin ON tin.id = xi.movement_id)
               ON xi.order_id = rl.order_id AND xi.line_no = rl.line_no AND xi.kind = 'transfer_in'
    )
    SELECT 'ledger', 'facility ' || f.code || ' lot ' || l.lot_number,
           'movements sum to ' || coalesce(g.total, 0) || ', balance is ' || coalesce(b.quantity, 0)
    FROM balances b FULL JOIN ledger g ON g.facility_id = b.facility_id AND g.lot_id = b.lot_id
    JOIN facilities f ON f.id = coalesce(b.facility_id, g.facility_id) JOIN lots l ON l.id = coalesce(b.lot_id, g.lot_id)
    WHERE coalesce(g.total, 0) <> coalesce(b.quantity, 0)
    UNION ALL
    SELECT 'transit', 'order ' || t.order_id || ' line ' || t.line_no,
           'transit movements sum to ' || coalesce(s.total, 0) || ', in transit is ' || t.quantity
    FROM in_transit t LEFT JOIN (SELECT order_id, line_no, sum(quantity) AS total FROM transit_movements GROUP BY 1, 2) s USING (order_id, line_no)
    WHERE t.quantity <> coalesce(s.total, 0)
    UNION ALL
    SELECT 'dispatch', 'order ' || order_id || ' line ' || line_no,
           CASE WHEN out_qty IS NULL THEN 'dispatched ' || dispatched || ' into transit with no transfer_out at the donor'
                ELSE 'line of ' || quantity || ', transit dispatch ' || dispatched || ', transfer_out ' || out_qty
                     || CASE WHEN out_facility <> from_facility_id OR out_lot <> lot_id THEN ' at another facility or lot' ELSE '' END END
    FROM line
    WHERE status IN ('dispatched', 'received')
      AND (out_qty IS DISTINCT FROM quantity OR dispatched <> quantity OR out_facility <> from_facility_id OR out_lot <> lot_id)
    UNION ALL
    SELECT 'receipt', 'order ' || order_id || ' line ' || line_no,
           'dispatched ' || dispatched || ', received ' || coalesce(received, 0) || ' (transfer_in ' || coalesce(in_qty, 0)
           || ', transit receipt ' || transit_received || '), lost ' || lost || ', in transit ' || in_transit
    FROM line
    WHERE status IN ('dispatched', 'received')
      AND (dispatched <> transit_received + lost + in_transit
           OR coalesce(in_qty, 0) <> transit_received
           OR (status = 'received' AND coalesce(received, 0) <> transit_received)
           OR (in_qty IS NOT NULL AND (in_facility <> to_facility_id OR in_lot <> lot_id)))
    UNION ALL
    SELECT 'not_shipped', 'order ' || order_id || ' line ' || line_no,
           'order is ' || status || ' but has ' || transit_movements || ' transit movements'
           || CASE WHEN out_qty IS NOT NULL OR in_qty IS NOT NULL THEN ' and transfers in the ledger' ELSE '' END
    FROM line
    WHERE status NOT IN ('dispatched', 'received') AND (transit_movements > 0 OR out_qty IS NOT NULL OR in_qty IS NOT NULL)
    UNION ALL
    SELECT 'lot', 'lot ' || l.lot_number || ' of item ' || i.code,
           'movements of both ledgers sum to ' || (coalesce(m.total, 0) + coalesce(tm.total, 0))
           || ', on hand plus in transit is ' || (coalesce(b.total, 0) + coalesce(it.total, 0))
    FROM lots l JOIN items i ON i.id = l.item_id
    LEFT JOIN (SELECT lot_id, sum(quantity) AS total FROM movements GROUP BY 1) m ON m.lot_id = l.id
    LEFT JOIN (SELECT rl.lot_id, sum(t.quantity) AS total FROM transit_movements t
               JOIN reallocation_lines rl ON rl.order_id = t.order_id AND rl.line_no = t.line_no GROUP BY 1) tm ON tm.lot_id = l.id
    LEFT JOIN (SELECT lot_id, sum(quantity) AS total FROM balances GROUP BY 1) b ON b.lot_id = l.id
    LEFT JOIN (SELECT lot_id, sum(quantity) AS total FROM in_transit GROUP BY 1) it ON it.lot_id = l.id
    WHERE coalesce(m.total, 0) + coalesce(tm.total, 0) <> coalesce(b.total, 0) + coalesce(it.total, 0)
$$;

GRANT SELECT ON transfer_movements TO stockpile_app;
GRANT INSERT ON transfer_movements TO stockpile_app;
