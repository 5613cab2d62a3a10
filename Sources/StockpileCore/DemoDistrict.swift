import Foundation

/// A realistic demonstration district, in SPEC.md's CSV formats: a city with three districts and
/// their townships; people's hospitals (one designated 定点救治医院), TCM hospitals, CDCs, reserve
/// warehouses and township health centres; the policy's items with lots and expiries; and 60 days
/// of plausible history up to `today`. Deterministic for a given `today`.
public enum DemoDistrict {
    struct DemoItem {
        let code, name: String
        let category: ItemCategory
        let unit: String
        let targetDays: Int?
        let shelfLifeDays: Int?
        /// Daily use per 100 beds at a hospital, and a floor for places without beds.
        let perHundredBeds: Double
        let minimumDaily: Double
    }

    static let items: [DemoItem] = [
        .init(code: "MASK", name: "医用外科口罩", category: .ppe, unit: "只", targetDays: nil, shelfLifeDays: 730, perHundredBeds: 120, minimumDaily: 20),
        .init(code: "N95", name: "N95口罩", category: .ppe, unit: "只", targetDays: nil, shelfLifeDays: 1095, perHundredBeds: 40, minimumDaily: 5),
        .init(code: "GOWN", name: "一次性防护服", category: .ppe, unit: "套", targetDays: nil, shelfLifeDays: 1095, perHundredBeds: 12, minimumDaily: 2),
        .init(code: "GOGGLE", name: "护目镜", category: .ppe, unit: "副", targetDays: nil, shelfLifeDays: nil, perHundredBeds: 3, minimumDaily: 1),
        .init(code: "GLOVE", name: "一次性手套", category: .consumable, unit: "副", targetDays: nil, shelfLifeDays: 1095, perHundredBeds: 150, minimumDaily: 20),
        .init(code: "THERMO", name: "红外线体温计", category: .device, unit: "支", targetDays: nil, shelfLifeDays: nil, perHundredBeds: 0.3, minimumDaily: 0.1),
        .init(code: "ALC", name: "医用酒精(75%)", category: .disinfectant, unit: "瓶", targetDays: 45, shelfLifeDays: 730, perHundredBeds: 10, minimumDaily: 2),
        .init(code: "CLO2", name: "二氧化氯消毒粉", category: .disinfectant, unit: "袋", targetDays: 45, shelfLifeDays: 730, perHundredBeds: 4, minimumDaily: 1),
        .init(code: "UVLAMP", name: "紫外线灯", category: .device, unit: "台", targetDays: nil, shelfLifeDays: nil, perHundredBeds: 0.05, minimumDaily: 0.02),
        .init(code: "AGTEST", name: "新冠病毒抗原检测试剂", category: .testKit, unit: "人份", targetDays: nil, shelfLifeDays: 540, perHundredBeds: 25, minimumDaily: 5),
        .init(code: "OSELT", name: "磷酸奥司他韦胶囊", category: .drug, unit: "盒", targetDays: nil, shelfLifeDays: 1095, perHundredBeds: 6, minimumDaily: 1),
    ]

    /// A made-up GS1 China GTIN-13 per demo item (prefix 690, company 12345, the item's place), for trying the scanner.
    public static func gtin(of item: String) -> String {
        let place = (items.firstIndex { $0.code == item } ?? 0) + 1
        let body = "069012345" + String(format: "%04d", place)
        let check = (0...9).first { ScanParser.checkDigitValid(body + String($0)) }!
        return body + String(check)
    }

    struct DemoRegion { let code, name: String; let townships: [String]; let latitude, longitude: Double }
    static let districts: [DemoRegion] = [
        .init(code: "QS", name: "青山区", townships: ["青山街道", "白沙镇", "柳林镇", "石门镇"], latitude: 30.62, longitude: 114.39),
        .init(code: "JA", name: "江岸区", townships: ["江滩街道", "后湖镇", "谌家矶镇"], latitude: 30.60, longitude: 114.31),
        .init(code: "LH", name: "临湖县", townships: ["城关镇", "湖口镇", "双河镇", "新店镇"], latitude: 30.48, longitude: 114.52),
    ]

    /// The CSV files, keyed by name (`regions`, `facilities`, `items`, `movements`).
    public static func csvFiles(today: LocalDate) -> [String: String] {
        var random = SeededRandom(seed: UInt64(today.year * 10_000 + today.month * 100 + today.day))
        var regions = ["code,name,parent_code", "SFS,示范市,"]
        var facilities = [Facility.csvColumns.joined(separator: ",")]
        var placed: [(code: String, kind: FacilityKind, beds: Int)] = []

        for (d, district) in districts.enumerated() {
            regions.append("\(district.code),\(district.name),SFS")
            func site(_ spread: Double) -> (Double, Double) {
                (district.latitude + random.uniform(-spread, spread), district.longitude + random.uniform(-spread, spread))
            }
            let prefix = district.name.dropLast()
            let sites: [(String, String, FacilityKind, Int, Bool)] = [
                ("\(district.code)-RM", "\(district.name)人民医院", .hospital, [650, 520, 380][d], d == 0),
                ("\(district.code)-ZY", "\(prefix)中医医院", .hospital, [300, 260, 180][d], false),
                ("\(district.code)-CDC", "\(district.name)疾病预防控制中心", .cdc, 0, false),
                ("\(district.code)-CK", "\(district.name)应急物资储备库", .warehouse, 0, false),
            ]
            for (code, name, kind, beds, designated) in sites {
                let (lat, lon) = site(0.04)
                facilities.append("\(code),\(name),\(kind.rawValue),\(district.code),\(beds),\(fmt(lat)),\(fmt(lon)),\(designated)")
                placed.append((code, kind, beds))
            }
            for (t, township) in district.townships.enumerated() {
                let regionCode = "\(district.code)\(t + 1)"
                regions.append("\(regionCode),\(township),\(district.code)")
                let (lat, lon) = site(0.12)
                let code = "\(regionCode)-WSY"
                let name = township.hasSuffix("街道") ? "\(township)社区卫生服务中心" : "\(township)卫生院"
                let beds = [30, 40, 60][random.int(3)]
                facilities.append("\(code),\(name),clinic,\(regionCode),\(beds),\(fmt(lat)),\(fmt(lon)),false")
                placed.append((code, .clinic, beds))
            }
        }

        // The optional expires column: the demo's lots expire exactly when the item has a shelf life
        // (goggles are PPE that do not).
        var itemRows = [(Item.csvColumns + ["expires", "gtin"]).joined(separator: ",")]
        for item in items {
            itemRows.append("\(item.code),\(item.name),\(item.category.rawValue),\(item.unit),\(item.targetDays.map(String.init) ?? ""),\(item.shelfLifeDays.map(String.init) ?? ""),\(item.shelfLifeDays != nil),\(Self.gtin(of: item.code))")
        }

        // History: an opening receipt 60 days ago, daily issues, a mid-period delivery, the odd loss.
        var movements = [MovementDraft.csvColumns.joined(separator: ",")]
        let start = today.adding(days: -60)
        var lotNumber = 100_000
        func time(_ date: LocalDate, hour: Int) -> String {
            String(format: "%@T%02d:%02d:00+08:00", date.description, hour, random.int(60))
        }
        func uuid() -> String { random.uuid() }

        for facility in placed {
            for item in items {
                // Clinics keep the basics only; CDCs and warehouses keep everything.
                if facility.kind == .clinic && ["UVLAMP", "GOGGLE", "OSELT"].contains(item.code) && random.int(2) == 0 { continue }
                var daily = facility.beds > 0 ? Double(facility.beds) / 100 * item.perHundredBeds : item.minimumDaily * 3
                daily = max(daily, item.minimumDaily)
                if facility.kind == .warehouse { daily = 0 } // a reserve warehouse issues only by allocation
                // Stock levels vary on purpose so the command centre has shortfalls to see.
                let coverDays = facility.kind == .warehouse ? 0 : [8, 20, 45, 75, 120][random.int(5)]
                var opening = Int((daily * Double(60 + coverDays)).rounded(.up))
                if facility.kind == .warehouse { opening = Int(item.perHundredBeds * 40 * Double(1 + random.int(4))) + 10 }
                lotNumber += 1
                let firstLot = "L\(lotNumber)"
                let firstExpiry = item.shelfLifeDays.map { start.adding(days: $0 / 2 + random.int(max(1, $0 / 2))).description } ?? ""
                movements.append("\(uuid()),\(facility.code),\(item.code),\(firstLot),\(firstExpiry),receipt,\(max(1, opening)),\(time(start, hour: 9)),期初入库")
                var onHand = max(1, opening)
                var lots = [(firstLot, onHand)]
                // A second, shorter-dated lot arrives mid-period at some sites.
                if facility.kind != .warehouse && random.int(3) == 0 {
                    lotNumber += 1
                    let day = start.adding(days: 20 + random.int(20))
                    let quantity = Int((daily * 10).rounded(.up)) + 1
                    let expiry = item.shelfLifeDays.map { _ in today.adding(days: 20 + random.int(70)).description } ?? ""
                    movements.append("\(uuid()),\(facility.code),\(item.code),L\(lotNumber),\(expiry),receipt,\(quantity),\(time(day, hour: 10)),采购入库")
                    lots.append(("L\(lotNumber)", quantity))
                    onHand += quantity
                }
                guard daily > 0 else { continue }
                for offset in 0..<60 {
                    let day = start.adding(days: offset)
                    var used = Int((daily * random.uniform(0.6, 1.4)).rounded())
                    if daily < 1 { used = random.uniform(0, 1) < daily ? 1 : 0 }
                    guard used > 0 else { continue }
                    // Take from the first lot that still has stock.
                    guard let index = lots.firstIndex(where: { $0.1 > 0 }) else { break }
                    used = min(used, lots[index].1)
                    lots[index].1 -= used
                    onHand -= used
                    movements.append("\(uuid()),\(facility.code),\(item.code),\(lots[index].0),,issue,\(used),\(time(day, hour: 14)),科室领用")
                }
                if random.int(12) == 0, let index = lots.firstIndex(where: { $0.1 > 2 }) {
                    let lost = max(1, lots[index].1 / 20)
                    lots[index].1 -= lost
                    movements.append("\(uuid()),\(facility.code),\(item.code),\(lots[index].0),,adjustment,\(lost),\(time(today.adding(days: -2), hour: 16)),damage: 仓库漏水受潮")
                }
            }
        }
        let (demand, contracts, capacity) = reserves(placed: placed, today: today)
        return [
            "regions": regions.joined(separator: "\n") + "\n",
            "facilities": facilities.joined(separator: "\n") + "\n",
            "items": itemRows.joined(separator: "\n") + "\n",
            "movements": movements.joined(separator: "\n") + "\n",
            "demand": demand.joined(separator: "\n") + "\n",
            "contracts": contracts.joined(separator: "\n") + "\n",
            "capacity": capacity.joined(separator: "\n") + "\n",
        ]
    }

    /// The reserve layers: full-load (满负荷) plans for the hospitals, contracts with suppliers
    /// (local ones first), and pledged production capacity of local manufacturers, mostly
    /// certified. Drawn from a generator of their own, so the history above stays as it was.
    static func reserves(placed: [(code: String, kind: FacilityKind, beds: Int)], today: LocalDate)
        -> (demand: [String], contracts: [String], capacity: [String]) {
        var random = SeededRandom(seed: UInt64(today.year * 10_000 + today.month * 100 + today.day) &* 31 &+ 7)
        var demand = ["facility_code,item_code,full_load_daily"]
        var contracts = ["code,facility_code,supplier,item_code,quantity,called_off,lead_time_days,valid_from,valid_to,local"]
        var capacity = ["code,facility_code,manufacturer,item_code,daily_capacity,ramp_up_days,valid_from,valid_to,certified,local"]
        let suppliers = [("本地医用防护用品有限公司", true), ("省医药集团物流公司", false), ("华中医疗器械贸易公司", false)]
        let makers = ["本地医用防护用品有限公司", "本地消毒制品厂", "本地卫生材料厂"]
        for facility in placed {
            for item in items {
                let daily = max(Double(facility.beds) / 100 * item.perHundredBeds, item.minimumDaily)
                // Hospitals plan for full load: all beds occupied in an outbreak, half again the usual use.
                if facility.kind == .hospital && item.category == .ppe {
                    demand.append("\(facility.code),\(item.code),\(fmt(daily * 1.5))")
                }
                let backed = facility.kind == .warehouse || (facility.kind == .hospital && facility.beds >= 300)
                guard backed, [.ppe, .disinfectant, .testKit].contains(item.category) else { continue }
                let (supplier, local) = suppliers[random.int(suppliers.count)]
                let quantity = Int((max(daily, item.minimumDaily * 10) * Double(20 + random.int(40))).rounded(.up))
                let calledOff = random.int(3) == 0 ? quantity / (2 + random.int(4)) : 0
                let from = today.adding(days: -30 - random.int(300)), to = today.adding(days: 60 + random.int(400))
                contracts.append("K-\(facility.code)-\(item.code),\(facility.code),\(supplier),\(item.code),\(quantity),\(calledOff),"
                                 + "\(local ? 2 + random.int(5) : 7 + random.int(21)),\(from),\(to),\(local)")
                guard facility.kind == .warehouse, random.int(2) == 0 else { continue }
                let perDay = Int((max(daily, item.perHundredBeds) * Double(1 + random.int(4))).rounded(.up))
                capacity.append("P-\(facility.code)-\(item.code),\(facility.code),\(makers[random.int(makers.count)]),\(item.code),\(perDay),"
                                + "\(3 + random.int(12)),\(today.adding(days: -60)),\(today.adding(days: 300)),\(random.int(5) != 0),true")
            }
        }
        return (demand, contracts, capacity)
    }

    static func fmt(_ value: Double) -> String { String(format: "%.5f", value) }
}

/// SplitMix64: small, fast and the same on every platform, so the demo is reproducible.
public struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func int(_ upperBound: Int) -> Int { Int(next() % UInt64(upperBound)) }
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * Double(next() >> 11) / Double(1 << 53)
    }
    public mutating func uuid() -> String {
        var bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: next()) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let p = Array(hex)
        return "\(String(p[0..<8]))-\(String(p[8..<12]))-\(String(p[12..<16]))-\(String(p[16..<20]))-\(String(p[20..<32]))"
    }
}
