-- Entries made offline and sent later (issue 16): each movement gets one outcome, decided once
-- and stored, and a refused one waits in the facility's "needs attention" list until a person
-- records what really happened. research/offline-entry.md §3 is the background.

-- 1. A count states "on hand was N at occurred_at". Movements of the same position that occurred
-- after it, and reached the ledger before it (the count was made offline), stay on top:
-- the count's change is N minus what the book held at occurred_at, not N minus on hand now.
-- A count made online (occurred_at now) has nothing after it and works as before. A count that
-- another count of the position followed is superseded by it: it changes nothing (NULL here,
-- a change of 0 in the ledger functions), and the outbox flags it for a person.
CREATE FUNCTION movements_after(p_facility integer, p_item integer, p_lot integer, p_at timestamptz, p_id uuid)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN bool_or(m.kind = 'count') THEN NULL ELSE coalesce(sum(m.quantity), 0)::bigint END FROM movements m
     WHERE m.facility_id = p_facility AND m.item_id = p_item AND m.lot_id = p_lot
       AND m.occurred_at > coalesce(p_at, now()) AND m.id <> p_id
$$;

-- The changes are made to the two ledger functions as textual edits of their stored definitions
-- (0001 and 0002 stay as they were applied), each checked so that a function that no longer has
-- the text fails this migration instead of silently keeping the old rule. Besides the count rule:
--   * occurred_at is stored no later than now (a device clock a few minutes fast, which the service
--     allows, would otherwise sit "after" every online count of the lot);
--   * a zero count never brings a lot into being here (0017's xmin guard cannot see a lot made
--     inside a savepoint, which is how sync_movement below records);
--   * an id taken by a movement this request cannot see (another facility's) is a conflict, not a
--     replay with nothing in it.
DO $$
DECLARE
    v_one   text := pg_get_functiondef('record_movement'::regproc);
    v_batch text := pg_get_functiondef('record_movements'::regproc);
    v_edits text[][] := ARRAY[
        ['one', 'v_delta := p_quantity - v_onhand;',
         $n$v_delta := coalesce(p_quantity - (v_onhand - movements_after(v_facility, v_item, v_lot, p_occurred_at, p_id)), 0);
        IF v_onhand + v_delta < 0 THEN
            RAISE EXCEPTION 'a count of % at % leaves below zero after the % taken since by movements recorded before it',
                p_quantity, p_occurred_at, -(v_onhand + v_delta - p_quantity) USING ERRCODE = 'SP409', COLUMN = 'quantity';
        END IF;$n$],
        ['one', 'coalesce(p_occurred_at, now()), p_recorded_by, v_fp)', 'least(coalesce(p_occurred_at, now()), now()), p_recorded_by, v_fp)'],
        ['one', $o$        INSERT INTO lots (item_id, lot_number, expiry) VALUES (v_item, p_lot, p_expiry)$o$,
         $n$        IF p_kind = 'count' AND p_quantity = 0 THEN
            RAISE EXCEPTION 'unknown lot %: nothing has brought it in, and a count of 0 records nothing', p_lot
                USING ERRCODE = 'SP404', COLUMN = 'lot';
        END IF;
        INSERT INTO lots (item_id, lot_number, expiry) VALUES (v_item, p_lot, p_expiry)$n$],
        ['one', 'IF v_existing.fingerprint <> v_fp THEN', 'IF v_existing.id IS NULL OR v_existing.fingerprint <> v_fp THEN'],
        -- In a batch, "after" counts the ledger's later movements and the batch's own earlier lines that
        -- occurred later; an earlier line that is a later count supersedes this one (a change of 0).
        ['batch', 'ELSE p_quantities[k] - pos_bal[v_pos[k]] END;',
         $n$ELSE coalesce(CASE WHEN EXISTS (SELECT 1 FROM unnest(p_kinds[1:k-1], v_pos[1:k-1], p_occurred_at[1:k-1], v_new[1:k-1]) AS u(kind, pos, occ, is_new)
                                            WHERE u.is_new AND u.kind = 'count' AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now))
                           THEN NULL
                           ELSE p_quantities[k] - pos_bal[v_pos[k]]
                                + movements_after(v_fac[k], v_item[k], v_lot[k], coalesce(p_occurred_at[k], v_now), p_ids[k])
                                + coalesce((SELECT sum(u.d) FROM unnest(v_delta[1:k-1], v_pos[1:k-1], p_occurred_at[1:k-1], v_new[1:k-1]) AS u(d, pos, occ, is_new)
                                             WHERE u.is_new AND u.pos = v_pos[k] AND coalesce(u.occ, v_now) > coalesce(p_occurred_at[k], v_now)), 0) END, 0) END;$n$],
        ['batch', 'coalesce(u.occ, v_now), v_now, p_recorded_by, u.fp', 'least(coalesce(u.occ, v_now), v_now), v_now, p_recorded_by, u.fp'],
        ['batch', 'occurred_at := coalesce(p_occurred_at[k], v_now);', 'occurred_at := least(coalesce(p_occurred_at[k], v_now), v_now);'],
        ['batch', 'occurred_at := coalesce(p_occurred_at[first_k], v_now);', 'occurred_at := least(coalesce(p_occurred_at[first_k], v_now), v_now);']
    ];
    i int;
BEGIN
    FOR i IN 1..array_length(v_edits, 1) LOOP
        IF position(v_edits[i][2] IN CASE v_edits[i][1] WHEN 'one' THEN v_one ELSE v_batch END) = 0 THEN
            RAISE EXCEPTION 'record_movement(s) no longer has the text this migration edits: %', v_edits[i][2];
        END IF;
        IF v_edits[i][1] = 'one' THEN v_one := replace(v_one, v_edits[i][2], v_edits[i][3]);
        ELSE v_batch := replace(v_batch, v_edits[i][2], v_edits[i][3]); END IF;
    END LOOP;
    EXECUTE v_one;
    EXECUTE v_batch;
END $$;

-- 2. Every movement sent by the offline outbox, with its one outcome. Only 'recorded' ones are in
-- the ledger (in the same transaction as their row here). A replay of an id answers the stored
-- outcome: a refused issue does not post later because stock rose, and a recorded one does not
-- fail because stock fell.
CREATE TABLE movement_submissions (
    id                 uuid PRIMARY KEY,
    facility_id        integer REFERENCES facilities (id),
    -- The entry as the clerk made it: the semantic fields, and their fingerprint (movement_fingerprint
    -- over the client's own occurred_at) that a resend must match.
    entry              jsonb NOT NULL,
    fingerprint        text NOT NULL,
    submitted_by       text NOT NULL,
    device             text,
    device_seq         bigint,
    -- The three times: when the clerk made it (device clock), the device clock when sent, and
    -- the server's when received; offset = received - sent.
    client_occurred_at timestamptz,
    client_sent_at     timestamptz,
    received_at        timestamptz NOT NULL DEFAULT now(),
    clock_offset_s     double precision,
    -- occurred_at as the ledger took it: the client's, moved by the offset when the device clock was wrong.
    occurred_at        timestamptz,
    outcome            text NOT NULL CHECK (outcome IN ('recorded', 'refused')),
    field              text,
    code               text,
    reason             text,
    on_hand            bigint,
    -- A recorded movement that occurred before the lot's latest count there: the count may
    -- already have seen it, which only a person can say.
    attention          text,
    resolved_at        timestamptz,
    resolved_by        text,
    resolution         text
);
CREATE INDEX movement_submissions_open ON movement_submissions (facility_id, received_at)
    WHERE resolved_at IS NULL AND (outcome = 'refused' OR attention IS NOT NULL);

ALTER TABLE movement_submissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE movement_submissions FORCE ROW LEVEL SECURITY;
-- A submission naming no known facility is the administrators' to see.
CREATE POLICY movement_submissions_in_scope ON movement_submissions
    USING (CASE WHEN facility_id IS NULL THEN current_setting('stockpile.scope', true) = 'all' ELSE stockpile_in_scope(facility_id) END)
    WITH CHECK (CASE WHEN facility_id IS NULL THEN current_setting('stockpile.scope', true) = 'all' ELSE stockpile_in_scope(facility_id) END);
GRANT SELECT, INSERT, UPDATE (resolved_at, resolved_by, resolution) ON movement_submissions TO stockpile_app;

-- One movement from the outbox. p_refused_field/p_refused_reason: the service's own validation
-- refused it (the refusal is stored all the same, so nothing is dropped). Returns the outcome and,
-- for a recorded one, the ledger's row; replay says the id had been submitted before.
-- SP409 column id: the id was submitted before with a different body (nothing is stored).
CREATE FUNCTION sync_movement(
    p_id uuid, p_facility text, p_item text, p_lot text, p_expiry date, p_kind text,
    p_quantity bigint, p_reason text, p_client_occurred_at timestamptz, p_occurred_at timestamptz,
    p_client_sent_at timestamptz, p_clock_offset_s double precision, p_device text, p_device_seq bigint,
    p_submitted_by text, p_refused_field text, p_refused_reason text,
    OUT outcome text, OUT replay boolean, OUT field text, OUT code text, OUT reason text, OUT on_hand bigint,
    OUT attention text, OUT quantity bigint, OUT balance_after bigint, OUT lot_expiry date,
    OUT recorded_at timestamptz, OUT occurred_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_fp       text := movement_fingerprint(p_kind, p_facility, p_item, p_lot, p_expiry, p_quantity, p_reason, p_client_occurred_at);
    v_sub      movement_submissions%ROWTYPE;
    v_facility integer;
    v_item     integer;
    v_lot      integer;
    v_rec      record;
    v_state    text;
    v_msg      text;
    v_col      text;
    v_count_at timestamptz;
BEGIN
    -- Two sends of one id (a lost answer and its resend) take turns here.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_id::text, 16));
    SELECT * INTO v_sub FROM movement_submissions s WHERE s.id = p_id;
    IF FOUND THEN
        IF v_sub.fingerprint <> v_fp THEN
            RAISE EXCEPTION 'movement % was already sent with a different body', p_id USING ERRCODE = 'SP409', COLUMN = 'id';
        END IF;
        outcome := v_sub.outcome; replay := true; field := v_sub.field; code := v_sub.code; reason := v_sub.reason;
        on_hand := v_sub.on_hand; attention := v_sub.attention;
        IF v_sub.outcome = 'recorded' THEN
            SELECT m.quantity, m.balance_after, l.expiry, m.recorded_at, m.occurred_at
              INTO quantity, balance_after, lot_expiry, recorded_at, occurred_at
              FROM movements m JOIN lots l ON l.id = m.lot_id WHERE m.id = p_id;
        END IF;
        RETURN;
    END IF;

    SELECT f.id INTO v_facility FROM facilities f WHERE f.code = p_facility;
    replay := false;
    IF p_refused_field IS NOT NULL THEN
        outcome := 'refused'; field := p_refused_field; code := 'invalid'; reason := p_refused_reason;
    ELSE
        BEGIN
            SELECT * INTO v_rec FROM record_movement(p_id, p_facility, p_item, p_lot, p_expiry, p_kind, p_quantity, p_reason,
                                                     p_occurred_at, p_submitted_by);
            outcome := 'recorded'; quantity := v_rec.quantity; balance_after := v_rec.balance_after;
            lot_expiry := v_rec.lot_expiry; recorded_at := v_rec.recorded_at; occurred_at := v_rec.occurred_at;
        EXCEPTION WHEN SQLSTATE 'SP400' OR SQLSTATE 'SP404' OR SQLSTATE 'SP409' OR SQLSTATE 'SP422' OR SQLSTATE 'SP423' THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT, v_col = COLUMN_NAME;
            outcome := 'refused'; field := coalesce(nullif(v_col, ''), 'movement'); reason := v_msg;
            code := CASE v_state WHEN 'SP404' THEN 'not_found' WHEN 'SP422' THEN 'expiry_mismatch' WHEN 'SP423' THEN 'held'
                                 WHEN 'SP409' THEN CASE WHEN v_col = 'id' THEN 'conflict' ELSE 'insufficient_stock' END
                                 ELSE 'invalid' END;
        END;
    END IF;

    SELECT i.id INTO v_item FROM items i WHERE i.code = p_item;
    SELECT l.id INTO v_lot FROM lots l WHERE l.item_id = v_item AND l.lot_number = p_lot;
    IF outcome = 'refused' AND v_lot IS NOT NULL THEN
        SELECT b.quantity INTO on_hand FROM balances b WHERE b.facility_id = v_facility AND b.lot_id = v_lot;
    ELSIF outcome = 'recorded' THEN
        SELECT max(m.occurred_at) INTO v_count_at FROM movements m
         WHERE m.facility_id = v_facility AND m.item_id = v_item AND m.lot_id = v_lot AND m.kind = 'count' AND m.id <> p_id;
        IF v_count_at > occurred_at THEN
            attention := 'before_count';
            reason := CASE WHEN p_kind = 'count'
                THEN format('counted at %s, before the count of this lot at %s, which stands: on hand is unchanged', occurred_at, v_count_at)
                ELSE format('occurred at %s, before the count of this lot at %s, which may already include it', occurred_at, v_count_at) END;
        END IF;
    END IF;

    -- A row under this id that this request cannot see (another facility's) makes this a conflict.
    INSERT INTO movement_submissions (id, facility_id, entry, fingerprint, submitted_by, device, device_seq, client_occurred_at,
                                      client_sent_at, clock_offset_s, occurred_at, outcome, field, code, reason, on_hand, attention)
    VALUES (p_id, v_facility,
            jsonb_build_object('facility', p_facility, 'item', p_item, 'lot', p_lot, 'expiry', p_expiry, 'kind', p_kind,
                               'quantity', p_quantity, 'reason', p_reason, 'occurred_at', p_client_occurred_at),
            v_fp, p_submitted_by, p_device, p_device_seq, p_client_occurred_at, p_client_sent_at, p_clock_offset_s,
            coalesce(occurred_at, p_occurred_at), outcome, field, code, reason, on_hand, attention)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'movement % was already sent by someone else', p_id USING ERRCODE = 'SP409', COLUMN = 'id';
    END IF;
END $$;
GRANT EXECUTE ON FUNCTION sync_movement TO stockpile_app;
