-- Storing a city's plan (over a million orders) checks each line's order by its key, with a plan
-- made from the table's statistics; when they say empty (autovacuum analysed the table after a run
-- rolled back, say), each check scans every order and the run stands for hours. The service
-- refreshes them before storing the lines, but ANALYZE by its role, which does not own the table,
-- only warned and did nothing. This runs it as the table's owner, and only on this table.
CREATE FUNCTION stockpile_analyze_orders() RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    ANALYZE reallocation_orders;
END $$;
REVOKE ALL ON FUNCTION stockpile_analyze_orders() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION stockpile_analyze_orders() TO stockpile_app;
