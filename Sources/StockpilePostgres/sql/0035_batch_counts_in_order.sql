-- A batch's counts in linear time (found by issue 19's import). Since 0023 a count in a batch looks
-- at the batch's own earlier lines that occurred after it (an earlier line that is a later count
-- supersedes it; later changes stay on top), and it did so by scanning every earlier line: a batch
-- full of counts cost its length squared. Importing one township of a 10,000-facility city
-- (70,609 movements, then a stock.csv of 19,051 counts) took over four minutes.
--
-- Only a line that occurred before some earlier line can find anything there. The loop now keeps the
-- latest time of the lines it has applied, and scans only for a count older than that: a batch in
-- time order (an import, a clerk's batch) never scans. What each count records is unchanged.
DO $$
DECLARE
    v_batch text := pg_get_functiondef('record_movements'::regproc);
    v_edits text[][] := ARRAY[
        ['    v_now      timestamptz := now();',
         $n$    v_now      timestamptz := now();
    -- The latest occurred_at of the new lines applied so far, and whether this one is older.
    v_latest   timestamptz := '-infinity';
    v_late     boolean;$n$],
        ['            CONTINUE WHEN NOT v_new[k];
            v_delta[k] := CASE p_kinds[k]',
         $n$            CONTINUE WHEN NOT v_new[k];
            v_late := coalesce(p_occurred_at[k], v_now) < v_latest;
            v_delta[k] := CASE p_kinds[k]$n$],
        ['ELSE coalesce(CASE WHEN EXISTS (SELECT 1 FROM unnest(p_kinds[1:k-1]',
         'ELSE coalesce(CASE WHEN CASE WHEN NOT v_late THEN false ELSE EXISTS (SELECT 1 FROM unnest(p_kinds[1:k-1]'],
        ['WHERE u.is_new AND u.kind = ''count'' AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now))
                           THEN NULL',
         $n$WHERE u.is_new AND u.kind = 'count' AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)) END
                           THEN NULL$n$],
        ['                                + coalesce((SELECT sum(u.d) FROM unnest(v_delta[1:k-1]',
         '                                + CASE WHEN NOT v_late THEN 0 ELSE coalesce((SELECT sum(u.d) FROM unnest(v_delta[1:k-1]'],
        ['WHERE u.is_new AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)), 0) END, 0) END;',
         'WHERE u.is_new AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)), 0) END END, 0) END;'],
        ['            v_after[k] := pos_bal[v_pos[k]];',
         $n$            v_after[k] := pos_bal[v_pos[k]];
            v_latest := greatest(v_latest, coalesce(p_occurred_at[k], v_now));$n$]
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
