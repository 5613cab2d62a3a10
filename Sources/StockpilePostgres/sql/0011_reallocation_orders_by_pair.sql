-- A plan's order lines are stored by joining them back to their orders by request, item, sender
-- and receiver (PostgresReallocations.create). With an index on the request alone, a planner
-- that last analysed the table empty (the nightly run at city scale deletes an earlier run's
-- orders, then stores 1.7 million new ones in the same transaction) chose a nested loop that
-- scanned every order of the request for every line: a run that took 27 s for its lines ran
-- for over 8 minutes before it was stopped. With the whole key indexed, each line finds its
-- order by one index lookup whatever the planner believes; the request alone still uses its
-- leading column.
DROP INDEX reallocation_orders_request;
CREATE INDEX reallocation_orders_request ON reallocation_orders (request_id, item_id, from_facility_id, to_facility_id);
