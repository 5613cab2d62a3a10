-- The second wall for the transit tables (issue 14): reallocation_lines, transit_movements,
-- transfer_movements (0012) and in_transit had no row-level security, so a connection whose scope
-- named no facility of an order still saw its lines and what was in transit. Now a row is visible
-- to whoever may see its order (either end), as the orders are (0007).

CREATE FUNCTION stockpile_order_in_scope(p_order bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT current_setting('stockpile.scope', true) = 'all'
        OR EXISTS (SELECT 1 FROM reallocation_orders o WHERE o.id = p_order
                     AND (stockpile_in_scope(o.from_facility_id) OR stockpile_in_scope(o.to_facility_id)))
$$;

ALTER TABLE reallocation_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE reallocation_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY lines_in_scope ON reallocation_lines
    USING (stockpile_order_in_scope(order_id)) WITH CHECK (stockpile_order_in_scope(order_id));

ALTER TABLE transit_movements ENABLE ROW LEVEL SECURITY;
ALTER TABLE transit_movements FORCE ROW LEVEL SECURITY;
CREATE POLICY transit_movements_in_scope ON transit_movements
    USING (stockpile_order_in_scope(order_id)) WITH CHECK (stockpile_order_in_scope(order_id));

ALTER TABLE transfer_movements ENABLE ROW LEVEL SECURITY;
ALTER TABLE transfer_movements FORCE ROW LEVEL SECURITY;
CREATE POLICY transfer_movements_in_scope ON transfer_movements
    USING (stockpile_order_in_scope(order_id)) WITH CHECK (stockpile_order_in_scope(order_id));

ALTER TABLE in_transit ENABLE ROW LEVEL SECURITY;
ALTER TABLE in_transit FORCE ROW LEVEL SECURITY;
CREATE POLICY in_transit_in_scope ON in_transit
    USING (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id))
    WITH CHECK (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id));

-- The service only ever writes what arrived and what is still in transit.
REVOKE UPDATE ON reallocation_lines, in_transit FROM stockpile_app;
GRANT UPDATE (received) ON reallocation_lines TO stockpile_app;
GRANT UPDATE (quantity) ON in_transit TO stockpile_app;
