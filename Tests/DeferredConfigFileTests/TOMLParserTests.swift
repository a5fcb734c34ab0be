@testable import DeferredConfigFile
import DeferredCore
import Testing

struct TOMLParserTests {
    @Test func readsTheShapesDeferredTomlUses() throws {
        let table = try TOMLParser.parse("""
        # comment
        [server]
        listen = "127.0.0.1:8080"   # trailing comment
        literal = 'C:\\path'
        escaped = "tab\\there \\u00e9"
        multi = \"\"\"
        line one
        line two\"\"\"

        [[hosts]]
        name = "a"
        port = 2_222
        ratio = 0.5
        on = true
        [[hosts]]
        name = "b"
        tags = ["x", 'y',
                "z",]
        inline = { a = 1, b.c = "d" }
        """)
        guard case .table(let server)? = table["server"] else { Issue.record("no server table"); return }
        #expect(server["listen"] == .string("127.0.0.1:8080"))
        #expect(server["literal"] == .string("C:\\path"))
        #expect(server["escaped"] == .string("tab\there é"))
        #expect(server["multi"] == .string("line one\nline two"))
        guard case .array(let hosts)? = table["hosts"], hosts.count == 2,
              case .table(let first) = hosts[0], case .table(let second) = hosts[1] else {
            Issue.record("hosts is not an array of two tables"); return
        }
        #expect(first["port"] == .integer(2222))
        #expect(first["ratio"] == .float(0.5))
        #expect(first["on"] == .bool(true))
        #expect(second["tags"] == .array([.string("x"), .string("y"), .string("z")]))
        guard case .table(let inline)? = second["inline"], case .table(let b)? = inline["b"] else {
            Issue.record("inline table not read"); return
        }
        #expect(inline["a"] == .integer(1))
        #expect(b["c"] == .string("d"))
    }

    @Test(arguments: [
        ("a = \"open", 1, "not closed"),
        ("a = 1\na = 2", 2, "set twice"),
        ("[t]\n[t]", 2, "defined twice"),
        ("a = bare", 1, "quotes"),
        ("a = 1 b = 2", 1, "one key = value a line"),
    ])
    func reportsTheLineOfAnError(text: String, line: Int, words: String) {
        do {
            _ = try TOMLParser.parse(text)
            Issue.record("parsed invalid TOML: \(text)")
        } catch {
            #expect(error.line == line)
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    /// Each level of nesting is a frame of the reader's stack: past the limit a document is
    /// refused, not a crash on a thread's small stack (the fuzzer found 3,362 levels).
    @Test func nestingPastTheLimitIsRefusedAndUpToItIsRead() throws {
        let deep = TOMLParser.maxDepth
        // The key is one level, each array one more.
        let arrays = "a = " + String(repeating: "[", count: deep - 1) + String(repeating: "]", count: deep - 1)
        #expect(throws: Never.self) { try TOMLParser.parse(arrays) }
        // Each inline table and each key in it is a level.
        let levels = (deep - 2) / 2
        let inline = "a = " + String(repeating: "{b=", count: levels) + "{}" + String(repeating: "}", count: levels)
        #expect(throws: Never.self) { try TOMLParser.parse(inline) }
        for text in ["a = " + String(repeating: "[", count: 5000),
                     "a = " + String(repeating: "{b=", count: 5000),
                     "\n" + (1...5000).map { "k\($0)" }.joined(separator: ".") + " = 1",
                     "a = [" + String(repeating: "{b.c=[", count: 20) + String(repeating: "]}", count: 20) + "]"] {
            do {
                _ = try TOMLParser.parse(text)
                Issue.record("a document nested past \(deep) was read")
            } catch {
                #expect(error.message.contains("more than \(deep)"), "\(error)")
            }
        }
    }
}
