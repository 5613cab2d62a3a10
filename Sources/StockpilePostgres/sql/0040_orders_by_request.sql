-- Orders are found by their request alone (a replay, a superseded report's proposed orders, a
-- plan's shipments); since each line names its order's id (PostgresReallocations.insertOrders),
-- nothing looks an order up by request, item, sender and receiver, the key sql/0011 indexed for a
-- join that is gone. That key cost the nightly run's 1.67 million orders at city scale a random
-- insert each into a 364 MB index: EXPLAIN ANALYZE of the insert, 28.2 s with it and 24.9 s with
-- the request alone, whose entries are all one key (deduplicated, appended in heap order).
DROP INDEX reallocation_orders_request;
CREATE INDEX reallocation_orders_request ON reallocation_orders (request_id);
