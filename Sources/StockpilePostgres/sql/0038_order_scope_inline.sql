-- Row-level security on an order's lines and transit ledgers at city scale (issue 18, part 4).
-- Their policies called stockpile_order_in_scope(order_id) for every row. PostgreSQL inlines a
-- SQL function into the query only when its body has no subquery, and this one's has (the order's
-- facilities), so each row ran the function on its own: storing a city's 1.8 million order lines
-- as the service role took 26 s more than as the owner, who is not bound by the policies. The
-- policies now test the scope setting first, inline, and call the function only when the scope
-- is not the whole city; the function's own answer is unchanged, so each policy admits exactly
-- the rows it admitted before.

ALTER POLICY lines_in_scope ON reallocation_lines
    USING (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id));
ALTER POLICY transit_movements_in_scope ON transit_movements
    USING (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id));
ALTER POLICY transfer_movements_in_scope ON transfer_movements
    USING (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id))
    WITH CHECK (current_setting('stockpile.scope', true) = 'all' OR stockpile_order_in_scope(order_id));
