-- The cover snapshot is written to the WAL (issue 15): a hot standby serves the command centre's
-- cover from it (an UNLOGGED table is empty on a standby, and reading one there is an error), and
-- a promoted standby or a primary after a crash keeps a snapshot consistent with its dirty marks.
-- The marks are logged too: with only the snapshot logged, a crash or a failover would keep the
-- snapshot and lose the marks of what changed since it was computed, and it would stay stale.
-- Cost: WAL for a rebuild (once a day) and for each batch's marks; measured in the closing note.
ALTER TABLE cover_snapshot SET LOGGED;
ALTER TABLE cover_positions SET LOGGED;
ALTER TABLE cover_facility_sums SET LOGGED;
ALTER TABLE cover_dirty SET LOGGED;
