/// TOML 1.0's integers and floats, strictly: underscores only between digits, no leading
/// zeros, prefixes in lower case and without a sign, integers within 64 bits.
enum TOMLNumber {
    static func parse(_ text: String) -> TOMLValue? {
        var body = Substring(text)
        var negative = false
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        switch body {
        case "inf": return .float(negative ? -.infinity : .infinity)
        case "nan": return .float(.nan)
        default: break
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            let digits = body.dropFirst(2)
            guard text.first != "+", text.first != "-", let clean = digitGroup(digits, radix: radix),
                  let value = Int(clean, radix: radix) else { return nil }
            return .integer(value)
        }
        let exponentAt = body.firstIndex { $0 == "e" || $0 == "E" }
        let mantissa = exponentAt.map { body[..<$0] } ?? body
        let pointAt = mantissa.firstIndex(of: ".")
        let whole = pointAt.map { mantissa[..<$0] } ?? mantissa
        guard let wholeDigits = digitGroup(whole, radix: 10), wholeDigits == "0" || !wholeDigits.hasPrefix("0") else { return nil }
        var clean = (negative ? "-" : "") + wholeDigits
        if let pointAt {
            guard let fraction = digitGroup(mantissa[mantissa.index(after: pointAt)...], radix: 10) else { return nil }
            clean += "." + fraction
        }
        if let exponentAt {
            var exponent = body[body.index(after: exponentAt)...]
            var sign = ""
            if let s = exponent.first, s == "+" || s == "-" {
                sign = String(s)
                exponent = exponent.dropFirst()
            }
            guard let digits = digitGroup(exponent, radix: 10) else { return nil }
            clean += "e" + sign + digits
        }
        if pointAt == nil, exponentAt == nil { return Int(clean).map(TOMLValue.integer) }
        return Double(clean).map(TOMLValue.float)
    }

    /// Digits of `radix`, each underscore between two of them; the digits without underscores.
    private static func digitGroup(_ text: Substring, radix: Int) -> String? {
        guard let first = text.first, let last = text.last, first != "_", last != "_", !text.contains("__") else { return nil }
        let digits = text.filter { $0 != "_" }
        guard digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true }) else { return nil }
        return String(digits)
    }
}
