/// A table while its document is being read. It remembers how it came to be, which decides
/// what TOML 1.0 still lets the document add to it: a `[header]` defines a table once, dotted
/// keys define the tables they pass through, an inline table is closed when its `}` is read.
final class TOMLTree {
    enum Origin {
        case root
        /// Named only on the way to a deeper `[a.b.c]`: `[a]` may still define it.
        case implicit
        case header
        case dotted
        case inline
    }

    enum Entry {
        case value(TOMLValue)
        case table(TOMLTree)
        /// An array of tables (`[[name]]`): the one kind of array a header may extend.
        case tables([TOMLTree])
    }

    var origin: Origin
    private var keys: [String] = []
    private var entries: [String: Entry] = [:]
    /// Where each key was written, and where the table was opened.
    var lines: [String: Int] = [:]
    var line: Int?

    init(_ origin: Origin, line: Int? = nil) {
        self.origin = origin
        self.line = line
    }

    subscript(key: String) -> Entry? {
        get { entries[key] }
        set {
            if entries[key] == nil { keys.append(key) }
            entries[key] = newValue
        }
    }

    var table: TOMLTable {
        var table = TOMLTable()
        table.lines = lines
        table.line = line
        for key in keys {
            switch entries[key] {
            case .value(let value)?: table[key] = value
            case .table(let tree)?: table[key] = .table(tree.table)
            case .tables(let trees)?: table[key] = .array(trees.map { .table($0.table) })
            case nil: break
            }
        }
        return table
    }
}
