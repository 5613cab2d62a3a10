-- Rotation (轮换, issue 17 part 4): an order that sends a reserve warehouse's lot, which its own
-- use would leave to expire, to a facility that uses it in time. Approved, dispatched and received
-- like any reallocation order, in the same shipments; marked so the pages and the report can say why.
ALTER TABLE reallocation_orders
    ADD COLUMN purpose text NOT NULL DEFAULT 'reallocation' CHECK (purpose IN ('reallocation', 'rotation'));

ALTER TABLE nightly_lines
    DROP CONSTRAINT nightly_lines_section_check,
    ADD CONSTRAINT nightly_lines_section_check
        CHECK (section IN ('orders', 'reorders', 'contract_gaps', 'expiring_lots', 'stale', 'overdue', 'hoarding', 'rotation'));
