import Foundation

/// A donation as it arrives (社会捐赠, issue 17 part 2): who gave it, to which facility, and its
/// lines by item and lot. Checked here before anything is written.
public struct DonationRequest: Sendable, Equatable {
    public enum DonorKind: String, Sendable, Codable, CaseIterable { case organisation, person }
    public struct Line: Sendable, Equatable {
        public var item: String
        public var lot: String
        public var expiry: LocalDate?
        public var quantity: Int64
    }
    public var id: UUID
    public var donor: String
    public var donorKind: DonorKind
    public var contact: String
    public var certificate: String
    public var facility: String
    public var lines: [Line]

    public static let maxLines = 200

    /// What a replay must match, as one text (the request's fields in a fixed order).
    public var fingerprint: String {
        ([donor, donorKind.rawValue, contact, certificate, facility] + lines.map { "\($0.item)\u{1F}\($0.lot)\u{1F}\($0.expiry?.description ?? "")\u{1F}\($0.quantity)" })
            .joined(separator: "\u{1E}")
    }
}

/// The loose form of a donation (a JSON body): every field optional, so validation says what is wrong.
public struct DonationDraft: Sendable {
    public struct Line: Sendable {
        public var item: String?
        public var lot: String?
        public var expiry: String?
        public var quantity: Double?
        public init(item: String? = nil, lot: String? = nil, expiry: String? = nil, quantity: Double? = nil) {
            self.item = item; self.lot = lot; self.expiry = expiry; self.quantity = quantity
        }
    }
    public var id: String?
    public var donor: String?
    public var donorKind: String?
    public var contact: String?
    public var certificate: String?
    public var facility: String?
    public var lines: [Line]?

    public init(id: String? = nil, donor: String? = nil, donorKind: String? = nil, contact: String? = nil, certificate: String? = nil,
                facility: String? = nil, lines: [Line]? = nil) {
        self.id = id; self.donor = donor; self.donorKind = donorKind; self.contact = contact; self.certificate = certificate
        self.facility = facility; self.lines = lines
    }

    public func validated() throws(FieldError) -> DonationRequest {
        guard let idText = id?.trimmingCharacters(in: .whitespaces), let uuid = UUID(uuidString: idText) else {
            throw FieldError(field: "id", reason: "id: required, a UUID chosen by the client (a retry with it is a replay)")
        }
        let donor = try TextBounds.check(self.donor ?? "", field: "donor", maxBytes: 300)
        let kind: DonationRequest.DonorKind
        if let text = donorKind, !text.isEmpty {
            guard let k = DonationRequest.DonorKind(rawValue: text) else {
                throw FieldError(field: "donor_kind", reason: "donor_kind: organisation or person, not \(text.prefix(40))")
            }
            kind = k
        } else {
            kind = .organisation
        }
        let contact = try TextBounds.check(self.contact ?? "", field: "contact", maxBytes: 300, required: false)
        let certificate = try TextBounds.check(self.certificate ?? "", field: "certificate", maxBytes: 300, required: false)
        let facility = try TextBounds.check(self.facility ?? "", field: "facility", maxBytes: TextBounds.code)
        guard let drafts = lines, !drafts.isEmpty, drafts.count <= DonationRequest.maxLines else {
            throw FieldError(field: "lines", reason: "lines: between 1 and \(DonationRequest.maxLines) lines of item, lot, expiry and quantity")
        }
        var lines: [DonationRequest.Line] = []
        var seen = Set<String>()
        for (i, d) in drafts.enumerated() {
            let prefix = "lines[\(i)]."
            let item: String, lot: String
            do {
                item = try TextBounds.check(d.item ?? "", field: "item", maxBytes: TextBounds.code)
                lot = try TextBounds.check(d.lot ?? "", field: "lot", maxBytes: TextBounds.code)
            } catch { throw FieldError(field: prefix + error.field, reason: prefix + error.reason) }
            var expiry: LocalDate?
            if let text = d.expiry?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
                guard let date = LocalDate(text) else { throw FieldError(field: prefix + "expiry", reason: "\(prefix)expiry: a date YYYY-MM-DD, not \(text.prefix(40))") }
                expiry = date
            }
            guard let q = d.quantity, q.isFinite, q == q.rounded(), q >= 1, q <= MovementDraft.maximumQuantity else {
                throw FieldError(field: prefix + "quantity", reason: "\(prefix)quantity: a whole number of base units from 1 to \(Int64(MovementDraft.maximumQuantity))")
            }
            guard seen.insert("\(item)\u{1F}\(lot)").inserted else {
                throw FieldError(field: prefix + "lot", reason: "\(prefix)lot: \(item) lot \(lot) is on an earlier line; put it on one line")
            }
            lines.append(.init(item: item, lot: lot, expiry: expiry, quantity: Int64(q)))
        }
        return DonationRequest(id: uuid, donor: donor, donorKind: kind, contact: contact, certificate: certificate, facility: facility, lines: lines)
    }
}

/// An inspection (质检) of a donation's lines: passed releases the line's hold; failed writes its stock off.
public struct InspectionResult: Sendable, Equatable {
    public enum Result: String, Sendable, Codable, CaseIterable { case passed, failed }
    public var line: Int
    public var result: Result
    public var note: String
    public init(line: Int, result: Result, note: String) { self.line = line; self.result = result; self.note = note }
}
