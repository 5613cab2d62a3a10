-- Shipments (调拨单 by truck, issue 17 part 1). A plan proposes one order per item and sender →
-- receiver pair: a city's nightly plan, about 167 orders per facility, each to be approved,
-- dispatched and received one by one. A truck carries many items, so a plan's orders with the same
-- sender and receiver form one shipment, acted on as one (every order of it in one transaction),
-- printed as one 调拨单, and carried by one named carrier. The orders stay the unit of the ledger
-- and of transit: a shipment adds no stock of its own, only the grouping and the carrier.
CREATE TABLE shipments (
    id               bigserial PRIMARY KEY,
    request_id       uuid NOT NULL,
    from_facility_id integer NOT NULL REFERENCES facilities (id),
    to_facility_id   integer NOT NULL REFERENCES facilities (id),
    distance_km      double precision NOT NULL,
    as_of            date NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Who drives it, named by the sender at dispatch: short receipts are summed per carrier.
    carrier          text,
    UNIQUE (request_id, from_facility_id, to_facility_id),
    CHECK (from_facility_id <> to_facility_id)
);

ALTER TABLE reallocation_orders ADD COLUMN shipment_id bigint REFERENCES shipments (id);
CREATE INDEX reallocation_orders_shipment ON reallocation_orders (shipment_id);

-- Orders stored before shipments existed get theirs, by the same rule.
INSERT INTO shipments (request_id, from_facility_id, to_facility_id, distance_km, as_of, created_at)
SELECT request_id, from_facility_id, to_facility_id, min(distance_km), min(as_of), min(created_at)
FROM reallocation_orders GROUP BY request_id, from_facility_id, to_facility_id;
UPDATE reallocation_orders o SET shipment_id = s.id FROM shipments s
WHERE s.request_id = o.request_id AND s.from_facility_id = o.from_facility_id AND s.to_facility_id = o.to_facility_id;

-- Scope: as its orders, whoever may see either end.
ALTER TABLE shipments ENABLE ROW LEVEL SECURITY;
ALTER TABLE shipments FORCE ROW LEVEL SECURITY;
CREATE POLICY shipments_in_scope ON shipments
    USING (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id))
    WITH CHECK (stockpile_in_scope(from_facility_id) OR stockpile_in_scope(to_facility_id));

GRANT SELECT, INSERT ON shipments TO stockpile_app;
-- The service only ever names the carrier after the fact.
GRANT UPDATE (carrier) ON shipments TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
