-- Lot data that can be trusted, and corrected (SPEC.md "Integrity rules": lots that expire).
--
-- Before: the first recording of a lot fixed its expiry for the whole city, so a zero count or a
-- receipt that left the optional expiry empty made the lot "never expires", every later correct
-- entry got 422, and expired stock counted as usable. Now a lot of an item that expires needs its
-- expiry when it is first brought in, a zero count brings no lot into being, and an administrator
-- can correct a lot's expiry (PUT /api/v1/lots/{item}/{lot}, audited; cover follows through the
-- cover_mark_lot trigger of 0005).

-- Whether an item's lots expire: NULL follows the rule (a shelf life, or a category that expires);
-- items.csv may say otherwise in an optional `expires` column.
ALTER TABLE items ADD COLUMN expires boolean;

CREATE FUNCTION stockpile_item_expires(p_item items) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(p_item.expires,
                    p_item.shelf_life_days IS NOT NULL
                    OR p_item.category IN ('ppe', 'drug', 'test_kit', 'disinfectant', 'consumable'))
$$;

-- A new lot of an expiring item without an expiry is refused (SP400, column expiry), whichever
-- path creates it. HINT carries the item and lot as JSON so a batch can name the movement. AFTER
-- INSERT: it fires only for lots really inserted (not those ON CONFLICT DO NOTHING found already
-- there, or that a concurrent request is inserting), and the refusal rolls the insert back.
CREATE FUNCTION lots_expiry_required() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_item items;
BEGIN
    IF NEW.expiry IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_item FROM items i WHERE i.id = NEW.item_id;
    IF stockpile_item_expires(v_item) THEN
        RAISE EXCEPTION 'item % expires: lot % needs its expiry date (YYYY-MM-DD) the first time it is brought in', v_item.code, NEW.lot_number
            USING ERRCODE = 'SP400', COLUMN = 'expiry', HINT = 'lot:' || json_build_object('item', v_item.code, 'lot', NEW.lot_number)::text;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER lots_expiry_required AFTER INSERT ON lots FOR EACH ROW EXECUTE FUNCTION lots_expiry_required();

-- A count of 0 of a lot that this very transaction created (nothing ever brought it in) records
-- nothing: SP404, as for any other unknown lot. The lot row goes with the refused transaction.
-- (Known limits: a lot created inside a subtransaction has that one's xmin, and a zero count at one
-- facility of a lot a receipt at another brought in earlier in the same batch is refused too.)
CREATE FUNCTION movements_zero_count_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_lot lots;
BEGIN
    SELECT * INTO v_lot FROM lots l WHERE l.id = NEW.lot_id;
    -- xmin is the creating transaction's 32-bit id; txid_current() the current one with its epoch.
    IF (SELECT l.xmin::text::bigint FROM lots l WHERE l.id = NEW.lot_id) = txid_current() % 4294967296
       AND NOT EXISTS (SELECT 1 FROM movements m
                       WHERE m.facility_id = NEW.facility_id AND m.item_id = NEW.item_id AND m.lot_id = NEW.lot_id) THEN
        RAISE EXCEPTION 'unknown lot %: nothing has brought it in, and a count of 0 records nothing', v_lot.lot_number
            USING ERRCODE = 'SP404', COLUMN = 'lot', HINT = 'movement ' || NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER movements_zero_count_guard BEFORE INSERT ON movements
    FOR EACH ROW WHEN (NEW.kind = 'count' AND NEW.requested = 0 AND NEW.balance_after = 0)
    EXECUTE FUNCTION movements_zero_count_guard();

-- Lots that should expire and do not, for `stockpile check` (made before these rules, or by an
-- item that came to expire later): each is counted as never expiring until an administrator
-- corrects it.
CREATE FUNCTION stockpile_lot_violations()
RETURNS TABLE (kind text, subject text, detail text) LANGUAGE sql STABLE AS $$
    SELECT 'lot_expiry', 'lot ' || l.lot_number || ' of item ' || i.code,
           'item ' || i.code || ' expires but the lot has no expiry; correct it with PUT /api/v1/lots/' || i.code || '/' || l.lot_number
    FROM lots l JOIN items i ON i.id = l.item_id
    WHERE l.expiry IS NULL AND stockpile_item_expires(i)
$$;
