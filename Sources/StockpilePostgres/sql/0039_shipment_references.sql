-- The nightly run's shipments at city scale (issue 18, part 4): 265,768 of them, each with two
-- foreign-key checks on its sender and receiver, each a query through SPI with its own executor
-- start and a KEY SHARE lock. EXPLAIN ANALYZE of that insert on the city (10,000 facilities ×
-- 300 items): 8.0 s, of which the two checks 5.3 s; without them 3.4 s. As for orders and lines
-- (sql/0037), the checks become one per statement of the same rule:
--   * a shipment's sender and receiver exist;
--   * they never change once stored (the service may only name the carrier);
--   * a facility is never deleted (facilities_stay, sql/0037), so nothing a shipment names goes.
CREATE FUNCTION shipments_refer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    SELECT n.id INTO v_id FROM changed n
     WHERE NOT EXISTS (SELECT 1 FROM facilities f WHERE f.id = n.from_facility_id)
        OR NOT EXISTS (SELECT 1 FROM facilities f WHERE f.id = n.to_facility_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'shipment % names a facility that does not exist', v_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER shipments_refer_insert AFTER INSERT ON shipments
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION shipments_refer();
CREATE TRIGGER shipments_fixed BEFORE UPDATE ON shipments FOR EACH ROW
    WHEN (OLD.from_facility_id IS DISTINCT FROM NEW.from_facility_id OR OLD.to_facility_id IS DISTINCT FROM NEW.to_facility_id)
    EXECUTE FUNCTION stockpile_references_fixed();
ALTER TABLE shipments
    DROP CONSTRAINT shipments_from_facility_id_fkey,
    DROP CONSTRAINT shipments_to_facility_id_fkey;
