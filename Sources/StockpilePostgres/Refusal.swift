/// A request the data says no to, with the field it is about: the HTTP layer's error middleware
/// maps `kind` to 404/409/403/400, the command line prints it.
public struct Refusal: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case notFound, conflict, forbidden, invalid }
    public var kind: Kind
    public var field: String?
    public var description: String
    public init(kind: Kind, field: String?, description: String) {
        self.kind = kind
        self.field = field
        self.description = description
    }
}
