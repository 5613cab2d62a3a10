-- Cover over time (issue 17, part 6): per date, region and item, the sums the dashboard shows.
-- The nightly run writes its date's from tonight's cover; `stockpile history` fills past dates
-- from the ledgers (cover as it stood, sql/0028). A region's row sums the facilities attached to
-- it directly; a region's series sums its subtree's rows.
CREATE TABLE cover_history (
    as_of              date NOT NULL,
    region_id          integer NOT NULL REFERENCES regions (id),
    item_id            integer NOT NULL REFERENCES items (id),
    facilities         integer NOT NULL,
    positions          integer NOT NULL,
    daily_demand       double precision NOT NULL,
    -- The demand basis: the full-load plans' daily sum, and the item's target then. A change of
    -- either is marked on the charts.
    full_load_demand   double precision NOT NULL,
    target_days        integer NOT NULL,
    physical_qty       bigint NOT NULL,
    expiring_qty       double precision NOT NULL,
    contract_qty       bigint NOT NULL,
    capacity_qty       bigint NOT NULL,
    shortfall_qty      bigint NOT NULL,
    stockout           integer NOT NULL,
    under_3d           integer NOT NULL,
    from_3_to_7d       integer NOT NULL,
    from_7_to_14d      integer NOT NULL,
    from_14d_to_target integer NOT NULL,
    at_target          integer NOT NULL,
    -- nightly: saved by that date's run; as_stood: reconstructed later from the ledgers.
    source             text NOT NULL CHECK (source IN ('nightly', 'as_stood')),
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (as_of, region_id, item_id)
);
CREATE INDEX cover_history_item ON cover_history (item_id, as_of);

-- Read where the token covers the whole region (a command token: its subtree); written only by the
-- service's own runs (scope all).
ALTER TABLE cover_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE cover_history FORCE ROW LEVEL SECURITY;
CREATE POLICY cover_history_read ON cover_history FOR SELECT USING (stockpile_covers_region(region_id));
CREATE POLICY cover_history_write ON cover_history FOR INSERT WITH CHECK (current_setting('stockpile.scope', true) = 'all');
CREATE POLICY cover_history_rewrite ON cover_history FOR UPDATE
    USING (current_setting('stockpile.scope', true) = 'all') WITH CHECK (current_setting('stockpile.scope', true) = 'all');
GRANT SELECT, INSERT, UPDATE ON cover_history TO stockpile_app;
