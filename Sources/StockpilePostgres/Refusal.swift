/// A request the data says no to, with the field it is about: the HTTP layer's error middleware
/// maps `kind` to 404/409/403/400 (and 409 lot_held), the command line prints it.
public struct Refusal: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        case notFound, conflict, forbidden, invalid
        /// A lot on hold where the step would take it (409 lot_held).
        case held
    }
    public var kind: Kind
    public var field: String?
    public var description: String
    public init(kind: Kind, field: String?, description: String) {
        self.kind = kind
        self.field = field
        self.description = description
    }
}
