-- A write that makes a commit wait for the synchronous standby (issue 15). PostgreSQL waits for
-- the standby only at the commit of a transaction that has an xid and wrote WAL: a replayed
-- movement writes nothing, so its "ok" would come back at once, even when the original commit was
-- only on a primary that has since lost its standby (a cancelled wait, or a crash while waiting).
-- Calling this after a replay writes a row and commits after the original did, so when the standby
-- confirms it, it has the original too. Rows older than a minute are swept on the way.
CREATE TABLE sync_barrier (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION stockpile_sync_barrier() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO sync_barrier DEFAULT VALUES;
    DELETE FROM sync_barrier WHERE at < now() - interval '1 minute';
END $$;

REVOKE ALL ON FUNCTION stockpile_sync_barrier() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stockpile_sync_barrier() TO stockpile_app;
