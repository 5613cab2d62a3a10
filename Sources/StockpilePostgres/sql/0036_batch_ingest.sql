-- The batch endpoint at 20,000 movements/s (issue 18, part 2). Measured with perf and
-- pg_stat_statements on `stockpile bench ingest`'s pgbench script (16 clients, batches of 100),
-- three costs grew with every line of a batch; each is removed here without changing what a batch
-- records.
--
-- 1. Every line ran the executor. The balance change of a line was one expression holding a count's
--    subqueries (EXISTS, sum over the batch's earlier lines), so PL/pgSQL could not evaluate it as a
--    simple expression: each line, receipt or not, planned and started a query with an aggregate and
--    a function scan (a third of the server's time). Receipts, issues, adjustments and counts in time
--    order are now plain expressions; only a count older than an earlier line of its batch runs the
--    query, as before. A batch of 40,000 receipts in one call: 18.1 s before, 2.4 s after.
-- 2. movement_fingerprint ran as a function call per line. It was declared IMMUTABLE, but its body
--    casts a row to text (record_out is STABLE), so the planner would not inline it. It is STABLE,
--    which is what it is; inlined, it costs what its expression costs. The text it returns is the same.
-- 3. Three foreign-key checks per line. Each inserted movement fired three row triggers (facility,
--    item, lot), each a query through SPI with its own executor start and a KEY SHARE lock, and with
--    16 clients on one item the lock on the shared item and lot rows became a multixact per line.
--    They are replaced by one statement-level check of the stronger rule the ledger relies on: every
--    movement is at a position (a balances row of its facility and lot, of the same item), and the
--    balances row carries the foreign keys to facilities, lots and items. Every path that writes a
--    movement creates and locks its position first in the same transaction, so the check sees it,
--    and positions are never deleted (the trigger below refuses it, as the foreign keys did).
ALTER FUNCTION movement_fingerprint(text, text, text, text, date, bigint, text, timestamptz) STABLE;

DO $$
DECLARE
    v_batch text := pg_get_functiondef('record_movements'::regproc);
    v_edits text[][] := ARRAY[
        [$o$            v_late := coalesce(p_occurred_at[k], v_now) < v_latest;
            v_delta[k] := CASE p_kinds[k]
                WHEN 'receipt' THEN p_quantities[k]
                WHEN 'issue' THEN -p_quantities[k]
                WHEN 'adjustment' THEN CASE WHEN adjustment_adds(p_reasons[k]) THEN p_quantities[k] ELSE -p_quantities[k] END
                ELSE coalesce(CASE WHEN CASE WHEN NOT v_late THEN false ELSE EXISTS$o$,
         $n$            v_late := coalesce(p_occurred_at[k], v_now) < v_latest;
            -- Plain expressions for every line but a count older than an earlier line of the batch:
            -- PL/pgSQL evaluates those without starting a query (sql/0036).
            IF p_kinds[k] = 'receipt' THEN
                v_delta[k] := p_quantities[k];
            ELSIF p_kinds[k] = 'issue' THEN
                v_delta[k] := -p_quantities[k];
            ELSIF p_kinds[k] = 'adjustment' THEN
                v_delta[k] := CASE WHEN adjustment_adds(p_reasons[k]) THEN p_quantities[k] ELSE -p_quantities[k] END;
            ELSIF NOT v_late THEN
                -- A count sets on-hand as it stood when counted; what was recorded after it stays on top.
                v_delta[k] := p_quantities[k] - pos_bal[v_pos[k]]
                              + movements_after(v_fac[k], v_item[k], v_lot[k], coalesce(p_occurred_at[k], v_now), p_ids[k]);
            ELSE
            v_delta[k] := coalesce(CASE WHEN CASE WHEN NOT v_late THEN false ELSE EXISTS$n$],
        [$o$coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)), 0) END END, 0) END;$o$,
         $n$coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)), 0) END END, 0);
            END IF;$n$]
    ];
    i int;
BEGIN
    FOR i IN 1..array_length(v_edits, 1) LOOP
        IF position(v_edits[i][1] IN v_batch) = 0 THEN
            RAISE EXCEPTION 'record_movements no longer has the text this migration edits: %', v_edits[i][1];
        END IF;
        v_batch := replace(v_batch, v_edits[i][1], v_edits[i][2]);
    END LOOP;
    EXECUTE v_batch;
END $$;

-- Every movement is at a position: one query per statement instead of three per line.
CREATE FUNCTION movements_at_positions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v record;
BEGIN
    SELECT n.id, n.facility_id, n.lot_id, n.item_id INTO v
      FROM inserted n
     WHERE NOT EXISTS (SELECT 1 FROM balances b
                        WHERE b.facility_id = n.facility_id AND b.lot_id = n.lot_id AND b.item_id = n.item_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'movement % is at no position: no balance of facility %, lot %, item %', v.id, v.facility_id, v.lot_id, v.item_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER movements_at_positions AFTER INSERT ON movements
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION movements_at_positions();

ALTER TABLE movements
    DROP CONSTRAINT movements_facility_id_fkey,
    DROP CONSTRAINT movements_item_id_fkey,
    DROP CONSTRAINT movements_lot_id_fkey;

-- A position, once it has existed, is part of the ledger's history: nobody deletes it, the owner included.
CREATE FUNCTION balances_permanent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'balances are permanent: a position''s movements refer to it' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER balances_permanent BEFORE DELETE OR TRUNCATE ON balances
    FOR EACH STATEMENT EXECUTE FUNCTION balances_permanent();
