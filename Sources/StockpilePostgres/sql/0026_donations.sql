-- Donations (社会捐赠, issue 17 part 2): recorded as they arrive, received into the ledger as
-- receipts, and held for inspection (待检) until an inspection record releases each line or, when
-- it fails, writes its stock off. Cover counts donated stock only once released, since a held lot
-- is not usable (sql/0015).
CREATE TABLE donations (
    id           bigserial PRIMARY KEY,
    -- The client's id for the recording request: a retried recording is a replay.
    request_id   uuid NOT NULL UNIQUE,
    fingerprint  text NOT NULL,
    donor        text NOT NULL CHECK (donor <> ''),
    donor_kind   text NOT NULL CHECK (donor_kind IN ('organisation', 'person')),
    contact      text NOT NULL DEFAULT '',
    certificate  text NOT NULL DEFAULT '',
    facility_id  integer NOT NULL REFERENCES facilities (id),
    received_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL
);

CREATE TABLE donation_lines (
    donation_id   bigint NOT NULL REFERENCES donations (id),
    line_no       integer NOT NULL,
    lot_id        integer NOT NULL REFERENCES lots (id),
    quantity      bigint NOT NULL CHECK (quantity > 0),
    movement_id   uuid NOT NULL,
    hold_id       bigint REFERENCES lot_holds (id),
    result        text CHECK (result IN ('passed', 'failed')),
    inspected_at  timestamptz,
    inspected_by  text,
    note          text,
    written_off   bigint,
    PRIMARY KEY (donation_id, line_no)
);

ALTER TABLE donations ENABLE ROW LEVEL SECURITY;
ALTER TABLE donations FORCE ROW LEVEL SECURITY;
CREATE POLICY donations_in_scope ON donations
    USING (stockpile_in_scope(facility_id)) WITH CHECK (stockpile_in_scope(facility_id));
ALTER TABLE donation_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE donation_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY donation_lines_in_scope ON donation_lines
    USING (EXISTS (SELECT 1 FROM donations d WHERE d.id = donation_id AND stockpile_in_scope(d.facility_id)))
    WITH CHECK (EXISTS (SELECT 1 FROM donations d WHERE d.id = donation_id AND stockpile_in_scope(d.facility_id)));
GRANT SELECT, INSERT ON donations TO stockpile_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO stockpile_app;
GRANT SELECT, INSERT, UPDATE (result, inspected_at, inspected_by, note, written_off) ON donation_lines TO stockpile_app;

-- The inspection hold on a donated lot, in the receiving facility's region. The clerk who records
-- the donation may not place holds of a region (0015): this places this one kind on its behalf,
-- and only for a facility in the caller's scope. Returns the hold (an active one already there is kept).
CREATE FUNCTION donation_hold(p_lot integer, p_facility integer, p_reason text, p_by text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_scope  text := current_setting('stockpile.scope', true);
    v_ids    text := current_setting('stockpile.facility_ids', true);
    v_region integer;
    v_hold   bigint;
BEGIN
    IF NOT stockpile_in_scope(p_facility) THEN
        RAISE EXCEPTION 'facility % is outside this token''s scope', p_facility USING ERRCODE = 'SP403', COLUMN = 'facility';
    END IF;
    SELECT f.region_id INTO v_region FROM facilities f WHERE f.id = p_facility;
    PERFORM set_config('stockpile.scope', 'all', true);
    INSERT INTO lot_holds (lot_id, region_id, reason, placed_by) VALUES (p_lot, v_region, p_reason, p_by)
        ON CONFLICT (lot_id, coalesce(region_id, 0)) WHERE released_at IS NULL DO NOTHING
        RETURNING id INTO v_hold;
    IF v_hold IS NULL THEN
        SELECT h.id INTO v_hold FROM lot_holds h
         WHERE h.lot_id = p_lot AND coalesce(h.region_id, 0) = coalesce(v_region, 0) AND h.released_at IS NULL;
    END IF;
    PERFORM set_config('stockpile.scope', coalesce(v_scope, ''), true);
    PERFORM set_config('stockpile.facility_ids', coalesce(v_ids, ''), true);
    RETURN v_hold;
END $$;

-- Lifts a donation line's hold once inspected (by a caller the line is visible to), unless another
-- donation line still waiting for inspection shares it.
CREATE FUNCTION donation_release(p_donation bigint, p_line integer, p_by text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    v_scope  text := current_setting('stockpile.scope', true);
    v_hold   bigint;
BEGIN
    SELECT dl.hold_id INTO v_hold FROM donation_lines dl JOIN donations d ON d.id = dl.donation_id
     WHERE dl.donation_id = p_donation AND dl.line_no = p_line AND stockpile_in_scope(d.facility_id);
    IF v_hold IS NULL THEN RETURN; END IF;
    PERFORM set_config('stockpile.scope', 'all', true);
    IF NOT EXISTS (SELECT 1 FROM donation_lines o WHERE o.hold_id = v_hold AND o.result IS NULL
                   AND NOT (o.donation_id = p_donation AND o.line_no = p_line)) THEN
        UPDATE lot_holds SET released_at = now(), released_by = p_by WHERE id = v_hold AND released_at IS NULL;
    END IF;
    PERFORM set_config('stockpile.scope', coalesce(v_scope, ''), true);
END $$;
GRANT EXECUTE ON FUNCTION donation_hold, donation_release TO stockpile_app;
