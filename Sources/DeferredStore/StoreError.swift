/// What went wrong in the store, with what to do about it.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case corrupt(String)
    case unknownJob(String)
    case database(String)
    /// Another process holds the database's lock (or our own writes queue behind one) past
    /// what a waiting sender allows: nothing was stored, and trying again later is right.
    case busy(String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "cannot open the state database \(path): \(reason). Check [server] state and the folder's permissions."
        case let .corrupt(what): "the state database holds something this version cannot read: \(what)"
        case let .unknownJob(id): "no job \(id) in the store"
        case let .database(reason): "the state database failed: \(reason)"
        case let .busy(what): "the state database is locked (\(what)); nothing was stored, try again shortly"
        }
    }
}
