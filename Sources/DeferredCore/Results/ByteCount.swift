/// A size as people read it in messages: "900 bytes", "64 KiB", "1.5 MiB", never "0 MiB".
public enum ByteCount {
    public static func text(_ bytes: some BinaryInteger) -> String {
        let value = Int64(clamping: bytes)
        let units: [(String, Int64)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (name, size) in units where value >= size {
            let whole = value / size, tenths = (value % size) * 10 / size
            return tenths == 0 ? "\(whole) \(name)" : "\(whole).\(tenths) \(name)"
        }
        return value == 1 ? "1 byte" : "\(value) bytes"
    }
}
