/// Rotation (轮换, issue 17 part 4). A reserve is dynamic (动态储备): a reserve warehouse's lot
/// that its own use will not consume before it expires is sent to a facility that will use it in
/// time, and the same quantity is bought fresh, so the reserve level is kept and nothing expires on
/// the shelf.
///
/// Built on tonight's expiring lots (Reorder.expiring: what the first-expiry-first-out walk at the
/// facility's own rate leaves at each lot's expiry, and the nearest faster consumer found for it),
/// kept for reserve warehouses, less what tonight's plan already moves out of that lot.
public struct RotationLine: Sendable, Codable, Equatable {
    public var warehouse: String
    public var warehouseName: String
    public var item: String
    public var itemName: String
    public var lot: String
    public var expiry: LocalDate
    public var daysToExpiry: Int
    public var onHand: Int64
    /// What the warehouse's own use leaves of the lot at its expiry, less tonight's plan's lines of it.
    public var unusedQty: Int64
    /// Sent to `to`, which uses it before it expires (at most what it would use in time).
    public var rotateQty: Int64
    public var to: String
    public var toName: String
    public var distanceKm: Double
    public var toDailyDemand: Double
    /// The same quantity bought fresh for the warehouse: the reserve level is kept.
    public var replacementQty: Int64
    /// The proposed order that carries it (set once stored).
    public var order: Int64?

    enum CodingKeys: String, CodingKey {
        case warehouse, item, lot, expiry, to, order
        case warehouseName = "warehouse_name", itemName = "item_name", daysToExpiry = "days_to_expiry", onHand = "on_hand",
             unusedQty = "unused_qty", rotateQty = "rotate_qty", toName = "to_name", distanceKm = "distance_km",
             toDailyDemand = "to_daily_demand", replacementQty = "replacement_qty"
    }
}

public enum Rotation {
    /// Tonight's rotation: the expiring lots of `warehouses` with a faster consumer, each less
    /// `plannedOut[warehouse|item|lot]` (what tonight's plan already sends of it), and the consumer's
    /// room less `plannedIn[facility|item]` (what tonight's plan already sends it) and less what
    /// earlier lines of tonight's rotation send it.
    public static func lines(expiring: [ExpiringLotLine], warehouses: Set<String>, plannedOut: [String: Int64],
                             plannedIn: [String: Int64]) -> [RotationLine] {
        var sent = plannedIn
        return expiring.compactMap { e in
            guard warehouses.contains(e.facility), let to = e.moveTo, let usable = e.moveToUsableQty, let km = e.distanceKm else { return nil }
            let unused = max(0, e.unconsumedQty - (plannedOut["\(e.facility)|\(e.item)|\(e.lot)"] ?? 0))
            let room = usable - (sent["\(to)|\(e.item)"] ?? 0)
            let quantity = min(unused, room, e.onHand)
            guard quantity > 0 else { return nil }
            sent["\(to)|\(e.item)", default: 0] += quantity
            return RotationLine(warehouse: e.facility, warehouseName: e.facilityName, item: e.item, itemName: e.itemName, lot: e.lot,
                                expiry: e.expiry, daysToExpiry: e.daysToExpiry, onHand: e.onHand, unusedQty: unused, rotateQty: quantity,
                                to: to, toName: e.moveToName ?? to, distanceKm: km, toDailyDemand: e.moveToDailyDemand ?? 0,
                                replacementQty: quantity, order: nil)
        }
    }

    /// One order per warehouse, receiver and item, its lots earliest expiry first.
    public struct Order: Sendable {
        public var item: String
        public var from: String
        public var to: String
        public var distanceKm: Double
        public var lots: [(lot: String, expiry: LocalDate, quantity: Int64)]
        public var quantity: Int64 { lots.reduce(0) { $0 + $1.quantity } }
    }

    public static func orders(_ lines: [RotationLine]) -> [Order] {
        var orders: [Order] = [], index: [String: Int] = [:]
        for line in lines.sorted(by: { ($0.warehouse, $0.to, $0.item, $0.expiry.description, $0.lot) < ($1.warehouse, $1.to, $1.item, $1.expiry.description, $1.lot) }) {
            let key = "\(line.warehouse)|\(line.to)|\(line.item)"
            if let i = index[key] {
                orders[i].lots.append((line.lot, line.expiry, line.rotateQty))
            } else {
                index[key] = orders.count
                orders.append(Order(item: line.item, from: line.warehouse, to: line.to, distanceKm: line.distanceKm,
                                    lots: [(line.lot, line.expiry, line.rotateQty)]))
            }
        }
        return orders
    }
}
