-- The nightly report's 截留 sections (issue 17, part 3): orders overdue on the road, and receivers
-- holding allocated stock far above target while others in their region are short.
ALTER TABLE nightly_lines
    DROP CONSTRAINT nightly_lines_section_check,
    ADD CONSTRAINT nightly_lines_section_check
        CHECK (section IN ('orders', 'reorders', 'contract_gaps', 'expiring_lots', 'stale', 'overdue', 'hoarding'));
