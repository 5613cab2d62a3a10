import Foundation
import Hummingbird
import NIOCore
import PQ
import StockpileCore
import StockpilePostgres

// Donations (社会捐赠, issue 17 part 2): POST /api/v1/donations records one as it arrives (its
// receipts enter the ledger, its lots are held for inspection, 待检); POST …/{id}/inspect records
// the inspection (质检) per line, releasing the hold or writing the stock off; GET /api/v1/donations
// is the register (?format=csv). The page /donations shows the register.
extension StockpileAPI {
    static let donationRoutes: [(method: String, path: String, roles: Set<Role>)] = [
        ("POST", "/api/v1/donations", writers), ("GET", "/api/v1/donations", readers),
        ("POST", "/api/v1/donations/{id}/inspect", planners),
    ]
}

struct DonationInput: Decodable, Sendable {
    struct Line: Decodable, Sendable {
        var item: String?
        var lot: String?
        var expiry: String?
        var quantity: Double?
    }
    var id: String?
    var donor: String?
    var donorKind: String?
    var contact: String?
    var certificate: String?
    var facility: String?
    var lines: [Line]?
    enum CodingKeys: String, CodingKey { case id, donor, contact, certificate, facility, lines, donorKind = "donor_kind" }

    var draft: DonationDraft {
        DonationDraft(id: id, donor: donor, donorKind: donorKind, contact: contact, certificate: certificate, facility: facility,
                      lines: lines?.map { DonationDraft.Line(item: $0.item, lot: $0.lot, expiry: $0.expiry, quantity: $0.quantity) })
    }
}

struct InspectionInput: Decodable, Sendable {
    struct Line: Decodable, Sendable {
        /// A number of any size, so that one out of range is refused by name, not as bad JSON.
        var line: Double?
        var result: String?
        var note: String?
    }
    var lines: [Line]?

    func validated() throws -> [InspectionResult] {
        guard let lines, !lines.isEmpty, lines.count <= DonationRequest.maxLines else {
            throw APIError(.badRequest, "invalid", "lines: between 1 and \(DonationRequest.maxLines) results of line, result and note", field: "lines")
        }
        return try lines.enumerated().map { i, l in
            guard let number = l.line, number == number.rounded(), (1...Double(DonationRequest.maxLines)).contains(number) else {
                throw APIError(.badRequest, "invalid", "lines[\(i)].line: the donation's line number", field: "lines[\(i)].line")
            }
            guard let result = l.result.flatMap(InspectionResult.Result.init(rawValue:)) else {
                throw APIError(.badRequest, "invalid", "lines[\(i)].result: passed or failed", field: "lines[\(i)].result")
            }
            let note: String
            switch Result(catching: { () throws(FieldError) -> String in
                // A failed inspection says why: it becomes the write-off's reason.
                try TextBounds.check(l.note ?? "", field: "lines[\(i)].note", maxBytes: TextBounds.note, required: result == .failed)
            }) {
            case .success(let text): note = text
            case .failure(let error): throw APIError.invalid(error)
            }
            return InspectionResult(line: Int(number), result: result, note: note)
        }
    }
}

struct DonationOutput: Encodable, Sendable {
    var donation: Donation
    var status: String
}

struct DonationsOutput: Encodable, Sendable {
    var donations: [DonationOutput]
}

enum DonationRegister {
    static let header = ["捐赠编号", "接收日期", "捐赠方", "类型", "联系方式", "证书/登记号", "接收机构", "行", "物资编码", "物资名称", "批号",
                         "有效期至", "数量", "质检结果", "质检人", "质检说明", "报废数量", "调出去向"]

    /// The register as a CSV download (the API's ?format=csv and the page's /donations/csv).
    static func csv(_ donations: [Donation], timeZone: TimeZone) -> Response {
        let text = CSVDownload.text(header: header, rows: rows(donations, timeZone: timeZone))
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"donations.csv\""],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func rows(_ donations: [Donation], timeZone: TimeZone) -> [[String]] {
        let day = DateFormatter()
        day.timeZone = timeZone
        day.dateFormat = "yyyy-MM-dd"
        return donations.flatMap { d in
            d.lines.map { l in
                [String(d.id), day.string(from: d.receivedAt), d.donor, d.donorKind == "person" ? "个人" : "单位", d.contact, d.certificate,
                 "\(d.facilityName) (\(d.facility))", String(l.line), l.item, l.itemName, l.lot, l.expiry ?? "", String(l.quantity),
                 l.result.map { $0 == "passed" ? "合格" : "不合格" } ?? "待检", l.inspectedBy ?? "", l.note ?? "",
                 l.writtenOff.map { String($0) } ?? "",
                 l.shipped.map { "#\($0.order)→\($0.to) \($0.quantity)" }.joined(separator: "; ")]
            }
        }
    }
}

func addDonationRoutes(_ api: RouterGroup<StockpileRequestContext>, services: StockpileServices) {
    let database = services.database
    api.post("donations") { request, context in
        let scope = try context.require(StockpileAPI.writers, to: "record donations")
        let body = try await request.body.collect(upTo: StockpileAPI.maxJSONBody)
        let donation: DonationRequest
        do { donation = try JSON.decode(DonationInput.self, from: body).draft.validated() } catch let error as FieldError { throw APIError.invalid(error) }
        try requireFacility(donation.facility, in: scope)
        do {
            let (stored, replay) = try await PostgresDonations(database, scope: scope).record(donation)
            return try JSON.response(DonationOutput(donation: stored, status: stored.status), status: replay ? .ok : .created)
        } catch let error as DonationLineError {
            throw APIError.from(error.underlying, fieldPrefix: "lines[\(error.index)].")
        }
    }
    api.get("donations") { request, context in
        let scope = try context.require(StockpileAPI.readers, to: "read donations")
        let query = request.uri.queryParameters
        let donations = try await PostgresDonations(database, scope: scope).list(facility: query["facility"].map(String.init))
        if query["format"] == "csv" { return DonationRegister.csv(donations, timeZone: services.timeZone) }
        return try JSON.response(DonationsOutput(donations: donations.map { DonationOutput(donation: $0, status: $0.status) }))
    }
    api.post("donations/{id}/inspect") { request, context in
        let scope = try context.require(StockpileAPI.planners, to: "inspect donations")
        let id = try pathID(context, "donation")
        let results = try JSON.decode(InspectionInput.self, from: try await request.body.collect(upTo: StockpileAPI.maxJSONBody)).validated()
        let donation = try await PostgresDonations(database, scope: scope).inspect(id, results)
        return try JSON.response(DonationOutput(donation: donation, status: donation.status))
    }
}
