import Crypto
import DeferredCore
import DeferredDemo
@testable import DeferredRunner
import Foundation
import Testing

/// Tar streams made by real tar producers (GNU tar, Python's tarfile), fed in small pieces.
@Suite struct ArtifactUnpackerTests {
    let folder: String = {
        let path = NSTemporaryDirectory() + "deferred-unpack-" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// Feeds `archive` in 700-byte pieces, so headers and data straddle the pieces.
    private func unpack(_ archive: Data, limits: ArtifactUnpacker.Limits = .init()) throws -> ArtifactUnpacker {
        let unpacker = try ArtifactUnpacker(destination: folder + "/out", limits: limits)
        var rest = archive[...]
        while !rest.isEmpty {
            unpacker.feed(rest.prefix(700))
            rest = rest.dropFirst(700)
        }
        unpacker.finish()
        return unpacker
    }

    /// A tar made by Python's tarfile from (name, type, data) entries.
    private func pythonTar(_ entries: [(String, String, String)], format: String = "GNU") throws -> Data {
        let spec = try JSONSerialization.data(withJSONObject: entries.map { [$0.0, $0.1, $0.2] })
        try spec.write(to: URL(fileURLWithPath: folder + "/spec.json"))
        let script = """
            import io, json, sys, tarfile
            entries = json.load(open(sys.argv[1]))
            with tarfile.open(sys.argv[2], "w", format=getattr(tarfile, sys.argv[3] + "_FORMAT")) as tar:
                for name, kind, data in entries:
                    info = tarfile.TarInfo(name)
                    if kind == "file":
                        info.size = len(data.encode())
                        tar.addfile(info, io.BytesIO(data.encode()))
                    elif kind == "symlink":
                        info.type, info.linkname = tarfile.SYMTYPE, data
                        tar.addfile(info)
                    elif kind == "hardlink":
                        info.type, info.linkname = tarfile.LNKTYPE, data
                        tar.addfile(info)
                    elif kind == "fifo":
                        info.type = tarfile.FIFOTYPE
                        tar.addfile(info)
                    elif kind == "dir":
                        info.type = tarfile.DIRTYPE
                        tar.addfile(info)
            """
        try script.write(toFile: folder + "/make.py", atomically: true, encoding: .utf8)
        try LocalCommand.run(["python3", folder + "/make.py", folder + "/spec.json", folder + "/made.tar", format])
        return try Data(contentsOf: URL(fileURLWithPath: folder + "/made.tar"))
    }

    @Test func keepsWhatGNUTarPacksWithSizesAndHashes() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = folder + "/artifacts"
        let deep = String(repeating: "very-long-folder-name/", count: 8) + "report.txt"
        try FileManager.default.createDirectory(atPath: source + "/" + (deep as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "hello\n".write(toFile: source + "/a.txt", atomically: true, encoding: .utf8)
        try Data(repeating: 7, count: 100_000).write(to: URL(fileURLWithPath: source + "/big.bin"))
        try "deep\n".write(toFile: source + "/" + deep, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: source + "/empty", contents: Data())
        for format in ["gnu", "pax"] {
            try? FileManager.default.removeItem(atPath: folder + "/out")
            try LocalCommand.run(["tar", "--format=\(format)", "-cf", folder + "/a.tar", "-C", source, "."])
            let unpacker = try unpack(try Data(contentsOf: URL(fileURLWithPath: folder + "/a.tar")))
            #expect(unpacker.streamError == nil)
            #expect(unpacker.refused.isEmpty, "\(unpacker.refused)")
            let kept = Dictionary(uniqueKeysWithValues: unpacker.kept.map { ($0.path, $0) })
            #expect(Set(kept.keys) == ["a.txt", "big.bin", deep, "empty"], "\(format): \(kept.keys.sorted())")
            #expect(kept["big.bin"]?.bytes == 100_000)
            #expect(kept["big.bin"]?.sha256 == Hex.encode(SHA256.hash(data: Data(repeating: 7, count: 100_000))))
            #expect(try String(contentsOfFile: folder + "/out/" + deep, encoding: .utf8) == "deep\n")
            #expect(kept["empty"]?.bytes == 0)
        }
    }

    @Test func refusesPathsOutsideLinksAndDevicesAndWritesNothingOutside() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let archive = try pythonTar([
            ("../evil", "file", "escaped"),
            ("/etc/x", "file", "absolute"),
            ("ok/../../evil2", "file", "climbs"),
            ("passwd", "symlink", "/etc/passwd"),
            ("hard", "hardlink", "/etc/passwd"),
            ("pipe", "fifo", ""),
            ("fine/result.txt", "file", "kept"),
            ("fine/result.txt", "file", "again"),
        ])
        let unpacker = try unpack(archive)
        #expect(unpacker.kept.map(\.path) == ["fine/result.txt"])
        let reasons = Dictionary(unpacker.refused.map { ($0.path, $0.reason) }, uniquingKeysWith: { $1 })
        #expect(reasons["../evil"]?.contains("leave the artifacts folder") == true)
        #expect(reasons["/etc/x"]?.contains("absolute") == true)
        #expect(reasons["ok/../../evil2"] != nil)
        #expect(reasons["passwd"]?.contains("links") == true)
        #expect(reasons["hard"]?.contains("links") == true)
        #expect(reasons["pipe"]?.contains("special") == true)
        #expect(reasons["fine/result.txt"]?.contains("twice") == true)
        #expect(!FileManager.default.fileExists(atPath: folder + "/evil"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/evil2"))
        #expect(try String(contentsOfFile: folder + "/out/fine/result.txt", encoding: .utf8) == "kept")
        let inside = try FileManager.default.subpathsOfDirectory(atPath: folder + "/out").sorted()
        #expect(inside == ["fine", "fine/result.txt"])
    }

    @Test func aTarBombStopsAtTheLimitsAndSaysSo() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let many = (0..<300).map { ("f\($0).txt", "file", String(repeating: "x", count: 100)) }
        let files = try unpack(try pythonTar(many), limits: .init(maxBytes: 1 << 20, maxFiles: 50))
        #expect(files.kept.count == 50)
        #expect(files.refused.count + files.refusedUnlisted == 250)
        #expect(files.refused.first?.reason.contains("limit of 50 files") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/out").count == 50)

        try FileManager.default.removeItem(atPath: folder + "/out")
        let heavy = try unpack(try pythonTar([("a", "file", String(repeating: "a", count: 600)), ("b", "file", String(repeating: "b", count: 600))]),
                               limits: .init(maxBytes: 1000, maxFiles: 10))
        #expect(heavy.kept.map(\.path) == ["a"])
        #expect(heavy.refused.map(\.reason) == ["past the limit of 1000 bytes in all"])
    }

    @Test func aStreamThatIsNotTarOrIsCutShortIsAnError() throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let garbage = try unpack(Data(repeating: 0x41, count: 2048))
        #expect(garbage.streamError?.contains("not a tar") == true)
        #expect(garbage.kept.isEmpty)
        try FileManager.default.removeItem(atPath: folder + "/out")
        let whole = try pythonTar([("cut.bin", "file", String(repeating: "z", count: 5000))])
        let cut = try unpack(whole.prefix(1500))
        #expect(cut.streamError?.contains("cut short") == true)
        #expect(cut.kept.isEmpty)
        #expect(cut.refused.map(\.path) == ["cut.bin"])
        #expect(!FileManager.default.fileExists(atPath: folder + "/out/cut.bin"))
    }

    /// Three headers a job's host once sent to crash the server (issue 13), kept with the
    /// fuzzers' regressions: each is now a stream error, and the entry before it stays.
    @Test(arguments: [
        ("pax-record-length-too-small.tar", "malformed record"),
        ("pax-negative-size.tar", "unreadable size '-30000000'"),
        ("long-name-negative-base256-size.tar", "unreadable size"),
    ])
    func malformedHeadersAreRefusedWithAnError(_ name: String, _ reason: String) throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/Regressions/tar/" + name)
        let unpacker = try unpack(try Data(contentsOf: file))
        #expect(unpacker.streamError?.contains(reason) == true, "\(unpacker.streamError ?? "no error")")
        #expect(unpacker.kept.isEmpty)
        #expect(unpacker.collected.refused.contains { $0.reason == unpacker.streamError })
    }

    @Test func sizesTheHeaderCannotHoldAreUnreadable() {
        #expect(ArtifactUnpacker.number(ArraySlice(Array("-0000001\0".utf8))) == nil)
        #expect(ArtifactUnpacker.number(ArraySlice([0xff] + [UInt8](repeating: 0xff, count: 11))) == nil)
        #expect(ArtifactUnpacker.number(ArraySlice([0x80] + [UInt8](repeating: 0xff, count: 11))) == nil)
        #expect(ArtifactUnpacker.number(ArraySlice([0x80] + [UInt8](repeating: 0, count: 9) + [1, 0])) == 256)
        #expect(ArtifactUnpacker.number(ArraySlice(Array("  000644 \0".utf8))) == 0o644)
        var short = ArraySlice(Array("1 path=a\n".utf8))
        #expect(ArtifactUnpacker.paxRecord(&short) == nil)
        var good = ArraySlice(Array("11 path=ab\n12 size=100\n".utf8))
        #expect(ArtifactUnpacker.paxRecord(&good).map { String(decoding: $0, as: UTF8.self) } == "path=ab")
        #expect(ArtifactUnpacker.paxRecord(&good).map { String(decoding: $0, as: UTF8.self) } == "size=100")
        #expect(good.isEmpty)
    }
}
