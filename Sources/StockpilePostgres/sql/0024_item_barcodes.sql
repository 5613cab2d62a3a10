-- Barcodes beyond an item's own GTIN (issue 16, part 2): its boxes' and cartons' GTINs, each with
-- the base units it holds, its MA device identifier, its drug code (药品标识码). From
-- item_barcodes.csv; a scan is looked up here and in items.gtin (sql/0022). A code names one item.
CREATE TABLE item_barcodes (
    code    text PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id),
    kind    text NOT NULL CHECK (kind IN ('gtin', 'ma', 'drug')),
    units   bigint NOT NULL CHECK (units BETWEEN 1 AND 1000000),
    level   text NOT NULL DEFAULT '',
    CHECK (CASE kind WHEN 'gtin' THEN code ~ '^[0-9]{14}$' WHEN 'drug' THEN code ~ '^[0-9]{7}$' ELSE code ~ '^MA\.[0-9]+\.' END)
);
CREATE INDEX item_barcodes_item ON item_barcodes (item_id);
GRANT SELECT, INSERT, UPDATE ON item_barcodes TO stockpile_app;

-- Every code that names an item, its own GTIN first (1 unit): what a scan is looked up in.
CREATE VIEW item_codes AS
    SELECT i.gtin AS code, i.id AS item_id, 'gtin' AS kind, 1::bigint AS units, '' AS level FROM items i WHERE i.gtin IS NOT NULL
    UNION ALL
    SELECT b.code, b.item_id, b.kind, b.units, b.level FROM item_barcodes b;
GRANT SELECT ON item_codes TO stockpile_app;
