import DeferredRunner
import Testing

/// The framing of a start or reattach exec's stdout, as `RemoteScripts`' follower prints it.
@Suite struct JobStreamTests {
    /// Everything the stream hands on, in order: "o:" and "e:" for output, "c<verdict>" where
    /// the collect stream begins, "t:" for its bytes (joined where one read split them).
    static func parts(_ bytes: [UInt8], splitAt cuts: [Int] = []) -> (parts: [String], malformed: String?) {
        var stream = JobStream()
        var parts: [String] = []
        func add(_ tag: String, _ piece: ArraySlice<UInt8>) {
            if let last = parts.last, last.hasPrefix(tag) { parts[parts.count - 1] = last + String(decoding: piece, as: UTF8.self) }
            else { parts.append(tag + String(decoding: piece, as: UTF8.self)) }
        }
        var from = 0
        for cut in cuts + [bytes.count] {
            stream.feed(bytes[from..<cut]) { part in
                switch part {
                case .stdout(let piece): add("o:", piece)
                case .stderr(let piece): add("e:", piece)
                case .collectBegins(let verdict): parts.append("c\(verdict)")
                case .collect(let piece): add("t:", piece)
                }
            }
            from = cut
        }
        return (parts, stream.malformed)
    }

    @Test func framesThenTheCollectStreamWhereverTheReadsSplitThem() {
        let wire = Array("o 6\nline\n\ne 4\nerr\no 3\no 1c 92\nrunning -\nresources - - -\nTAR".utf8)
        let whole = Self.parts(wire)
        #expect(whole.parts == ["o:line\n\n", "e:err\n", "o:o 1", "c92", "t:running -\nresources - - -\nTAR"])
        #expect(whole.malformed == nil)
        for cut in 0...wire.count {
            #expect(Self.parts(wire, splitAt: [cut]).parts == whole.parts, "split at \(cut)")
        }
        // One byte a read.
        #expect(Self.parts(wire, splitAt: Array(1..<wire.count)).parts == whole.parts)
    }

    @Test(arguments: ["x 1\nabc", "o\n", "o -1\n", "o 1 \n", "o 1234567890123456789\n", "c 256\n", "oo 1\n", " 1\n",
                      "o 1" + String(repeating: "0", count: 30)])
    func aLineThatIsNoHeaderEndsTheParseAndNothingAfterItIsHandedOn(_ wire: String) {
        let read = Self.parts(Array(("o 2\nok" + wire + "o 4\nmore").utf8))
        #expect(read.parts == ["o:ok"])
        #expect(read.malformed != nil)
    }

    @Test func anAnnouncedSizeIsNeverBytesThatDidNotCome() {
        // A frame that claims more than arrives hands on what arrived, and waits for the rest.
        let read = Self.parts(Array("o 999999999999999999\nonly this".utf8))
        #expect(read.parts == ["o:only this"])
        #expect(read.malformed == nil)
        // An empty frame is nothing.
        #expect(Self.parts(Array("o 0\ne 0\nc 0\n".utf8)).parts == ["c0"])
    }
}
