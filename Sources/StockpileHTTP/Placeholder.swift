enum _PlaceholderStockpileHTTP {}
