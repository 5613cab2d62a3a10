-- The nightly run's orders at city scale (issue 18, part 4). Storing a city's plan (1.19 million
-- orders in 199,010 shipments, and their lines) fired four foreign-key checks per order and two per
-- line, each a query through SPI with its own executor start and a KEY SHARE lock. `bench nightly`
-- at 10,000 facilities × 300 items, on the same warm cluster and with the same totals: with the
-- foreign keys 187.0 s (orders phase 106.6 s); with the checks below 153.7 s and 171.2 s (orders
-- 70.6 s and 79.1 s). As for movements (sql/0036), each check is replaced by one per statement of
-- the same rule, and the rows referred to stay:
--   * an order's item, sender and receiver exist, and so does its shipment when it has one;
--   * a line's order and lot exist, and neither an order's nor a line's references change;
--   * an order, a shipment, a facility, an item or a lot that something refers to is not deleted.
-- Facilities, items and lots are never deleted (the ledger refers to them too); orders and
-- shipments only by the benchmark that reruns a nightly report, lines first.

CREATE FUNCTION reallocation_orders_refer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT n.id INTO v_id FROM changed n
     WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.id = n.item_id)
        OR NOT EXISTS (SELECT 1 FROM facilities f WHERE f.id = n.from_facility_id)
        OR NOT EXISTS (SELECT 1 FROM facilities f WHERE f.id = n.to_facility_id)
        OR (n.shipment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM shipments s WHERE s.id = n.shipment_id))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'order % names an item, facility or shipment that does not exist', v_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reallocation_orders_refer_insert AFTER INSERT ON reallocation_orders
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION reallocation_orders_refer();

CREATE FUNCTION reallocation_lines_refer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_order bigint;
BEGIN
    SELECT n.order_id INTO v_order FROM changed n
     WHERE NOT EXISTS (SELECT 1 FROM reallocation_orders o WHERE o.id = n.order_id)
        OR NOT EXISTS (SELECT 1 FROM lots l WHERE l.id = n.lot_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a line of order % names an order or lot that does not exist', v_order USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reallocation_lines_refer_insert AFTER INSERT ON reallocation_lines
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION reallocation_lines_refer();

-- What an order or line refers to is fixed once stored (its status moves; what it moves does not),
-- so an update never needs the checks above: one that would change a reference is refused.
CREATE FUNCTION stockpile_references_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'what % refer to is fixed once stored', TG_TABLE_NAME USING ERRCODE = '42501';
END $$;
CREATE TRIGGER reallocation_orders_fixed BEFORE UPDATE ON reallocation_orders FOR EACH ROW
    WHEN (OLD.item_id IS DISTINCT FROM NEW.item_id OR OLD.from_facility_id IS DISTINCT FROM NEW.from_facility_id
          OR OLD.to_facility_id IS DISTINCT FROM NEW.to_facility_id OR OLD.shipment_id IS DISTINCT FROM NEW.shipment_id)
    EXECUTE FUNCTION stockpile_references_fixed();
CREATE TRIGGER reallocation_lines_fixed BEFORE UPDATE ON reallocation_lines FOR EACH ROW
    WHEN (OLD.order_id IS DISTINCT FROM NEW.order_id OR OLD.lot_id IS DISTINCT FROM NEW.lot_id)
    EXECUTE FUNCTION stockpile_references_fixed();

-- What is referred to stays.
CREATE FUNCTION stockpile_referred_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR TG_TABLE_NAME IN ('facilities', 'items', 'lots') THEN
        RAISE EXCEPTION '% are never deleted: the ledger and the orders refer to them', TG_TABLE_NAME USING ERRCODE = '42501';
    END IF;
    IF TG_TABLE_NAME = 'reallocation_orders' AND EXISTS (SELECT 1 FROM gone g JOIN reallocation_lines l ON l.order_id = g.id) THEN
        RAISE EXCEPTION 'an order with lines cannot be deleted before its lines' USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_TABLE_NAME = 'shipments' AND EXISTS (SELECT 1 FROM gone g JOIN reallocation_orders o ON o.shipment_id = g.id) THEN
        RAISE EXCEPTION 'a shipment with orders cannot be deleted before its orders' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER reallocation_orders_stay AFTER DELETE ON reallocation_orders
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER shipments_stay AFTER DELETE ON shipments
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER reallocation_orders_stay_truncate BEFORE TRUNCATE ON reallocation_orders FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER shipments_stay_truncate BEFORE TRUNCATE ON shipments FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER facilities_stay BEFORE DELETE OR TRUNCATE ON facilities FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER items_stay BEFORE DELETE OR TRUNCATE ON items FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();
CREATE TRIGGER lots_stay BEFORE DELETE OR TRUNCATE ON lots FOR EACH STATEMENT EXECUTE FUNCTION stockpile_referred_stays();

ALTER TABLE reallocation_orders
    DROP CONSTRAINT reallocation_orders_item_id_fkey,
    DROP CONSTRAINT reallocation_orders_from_facility_id_fkey,
    DROP CONSTRAINT reallocation_orders_to_facility_id_fkey,
    DROP CONSTRAINT reallocation_orders_shipment_id_fkey;
ALTER TABLE reallocation_lines
    DROP CONSTRAINT reallocation_lines_order_id_fkey,
    DROP CONSTRAINT reallocation_lines_lot_id_fkey;
