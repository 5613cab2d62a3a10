-- The nightly run stores the sections of its report that do not depend on its orders (reorders,
-- contract gaps, expiring lots, stale, overdue, hoarding) while the orders are still being
-- written on another connection (PostgresNightly.perform). Those lines go in before their header
-- row, whose totals wait for the orders, so the run defers their reference to the header to its
-- commit (SET CONSTRAINTS … DEFERRED in its own transaction). Everyone else still has it checked
-- per statement. A run that dies before its commit leaves neither lines nor header.
ALTER TABLE nightly_lines ALTER CONSTRAINT nightly_lines_as_of_scope_generation_fkey DEFERRABLE INITIALLY IMMEDIATE;
