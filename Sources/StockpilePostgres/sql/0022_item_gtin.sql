-- Barcodes on items (issue 16, part 2): the GTIN-14 an item's packaging carries (items.csv's
-- optional gtin column; a GTIN-13 is stored with a leading 0). A scan's (01) finds the item.
ALTER TABLE items ADD COLUMN gtin text UNIQUE CHECK (gtin ~ '^[0-9]{14}$');
