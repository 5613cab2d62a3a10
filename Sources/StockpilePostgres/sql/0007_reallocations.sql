-- Reallocation orders (调拨单, SPEC.md "Reallocation orders"): proposed → approved → dispatched →
-- received, or cancelled before dispatch. Dispatch moves stock from the donor into in-transit
-- (transfer_out), receipt from in-transit to the receiver (transfer_in); what a short receipt
-- leaves behind is a loss of the transit, with a reason.

CREATE TABLE reallocation_orders (
    id               bigserial PRIMARY KEY,
    -- The client's id for the request that created it: a retried creation is a replay.
    request_id       uuid NOT NULL,
    item_id          integer NOT NULL REFERENCES items (id),
    from_facility_id integer NOT NULL REFERENCES facilities (id),
    to_facility_id   integer NOT NULL REFERENCES facilities (id),
    quantity         bigint NOT NULL CHECK (quantity > 0),
    distance_km      double precision NOT NULL,
    as_of            date NOT NULL,
    status           text NOT NULL DEFAULT 'proposed'
                     CHECK (status IN ('proposed', 'approved', 'dispatched', 'received', 'cancelled')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    approved_at      timestamptz, approved_by text,
    dispatched_at    timestamptz, dispatched_by text,
    received_at      timestamptz, received_by text,
    cancelled_at     timestamptz, cancelled_by text, cancel_reason text,
    CHECK (from_facility_id <> to_facility_id)
);
CREATE INDEX reallocation_orders_request ON reallocation_orders (request_id);
CREATE INDEX reallocation_orders_status ON reallocation_orders (status, id);

CREATE TABLE reallocation_lines (
    order_id  bigint NOT NULL REFERENCES reallocation_orders (id),
    line_no   integer NOT NULL,
    lot_id    integer NOT NULL REFERENCES lots (id),
    quantity  bigint NOT NULL CHECK (quantity > 0),
    received  bigint CHECK (received >= 0 AND received <= quantity),
    PRIMARY KEY (order_id, line_no)
);

-- In transit: its own balance per order line, never stock at either end, with its own ledger.
CREATE TABLE transit_movements (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL,
    line_no     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('dispatch', 'receipt', 'loss')),
    quantity    bigint NOT NULL,          -- signed: + into transit, − out of it
    reason      text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_by text NOT NULL,
    FOREIGN KEY (order_id, line_no) REFERENCES reallocation_lines (order_id, line_no),
    UNIQUE (order_id, line_no, kind)      -- each happens once per line
);
CREATE TRIGGER transit_movements_append_only BEFORE UPDATE OR DELETE ON transit_movements
    FOR EACH ROW EXECUTE FUNCTION stockpile_append_only();

CREATE TABLE in_transit (
    order_id         bigint NOT NULL,
    line_no          integer NOT NULL,
    item_id          integer NOT NULL REFERENCES items (id),
    lot_id           integer NOT NULL REFERENCES lots (id),
    from_facility_id integer NOT NULL REFERENCES facilities (id),
    to_facility_id   integer NOT NULL REFERENCES facilities (id),
    quantity         bigint NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (order_id, line_no) REFERENCES reallocation_lines (order_id, line_no)
);
CREATE INDEX in_transit_to ON in_transit (to_facility_id, item_id) WHERE quantity > 0;

-- A transfer at one facility and lot, exactly once per id: transfer_out takes stock (never below
-- zero: SP409 names what is on hand), transfer_in brings it. A repeated id changes nothing.
CREATE FUNCTION record_transfer(p_id uuid, p_facility_id integer, p_lot_id integer, p_kind text, p_quantity bigint,
                                p_reason text, p_recorded_by text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_item integer; v_lot text; v_expiry date; v_facility text; v_item_code text;
    v_onhand bigint; v_delta bigint;
BEGIN
    IF p_kind NOT IN ('transfer_out', 'transfer_in') OR p_quantity <= 0 THEN
        RAISE EXCEPTION 'a transfer is transfer_out or transfer_in of a positive quantity' USING ERRCODE = 'SP400';
    END IF;
    IF EXISTS (SELECT 1 FROM movements m WHERE m.id = p_id) THEN
        RETURN false;
    END IF;
    SELECT l.item_id, l.lot_number, l.expiry INTO v_item, v_lot, v_expiry FROM lots l WHERE l.id = p_lot_id;
    SELECT f.code INTO v_facility FROM facilities f WHERE f.id = p_facility_id;
    SELECT i.code INTO v_item_code FROM items i WHERE i.id = v_item;
    v_delta := CASE p_kind WHEN 'transfer_in' THEN p_quantity ELSE -p_quantity END;
    INSERT INTO balances (facility_id, lot_id, item_id, quantity) VALUES (p_facility_id, p_lot_id, v_item, 0)
        ON CONFLICT (facility_id, lot_id) DO NOTHING;
    SELECT b.quantity INTO v_onhand FROM balances b WHERE b.facility_id = p_facility_id AND b.lot_id = p_lot_id FOR UPDATE;
    IF v_onhand + v_delta < 0 THEN
        RAISE EXCEPTION 'only % on hand of lot % of item % at facility %; cannot dispatch %', v_onhand, v_lot, v_item_code, v_facility, p_quantity
            USING ERRCODE = 'SP409', COLUMN = 'quantity';
    END IF;
    INSERT INTO movements (id, facility_id, item_id, lot_id, kind, quantity, requested, balance_after, reason, occurred_at,
                           recorded_by, fingerprint)
    VALUES (p_id, p_facility_id, v_item, p_lot_id, p_kind, v_delta, p_quantity, v_onhand + v_delta, coalesce(p_reason, ''), now(),
            p_recorded_by, movement_fingerprint(p_kind, v_facility, v_item_code, v_lot, v_expiry, p_quantity, p_reason, now()));
    UPDATE balances b SET quantity = v_onhand + v_delta, updated_at = now()
        WHERE b.facility_id = p_facility_id AND b.lot_id = p_lot_id;
    RETURN true;
END $$;

-- Scope: an order is visible to whoever may see either end.
ALTER TABLE reallocation_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE reallocation_orders FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_in_scope ON reallocation_orders
    USING (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id))
    WITH CHECK (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id));

GRANT SELECT, INSERT, UPDATE ON reallocation_orders, reallocation_lines, in_transit TO stockpile_app;
GRANT SELECT, INSERT ON transit_movements TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
