import Foundation

/// allowed_signers times: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC with a
/// trailing `Z`, otherwise in the server's time zone (as ssh-keygen reads them).
enum Timestamp {
    static func parse(_ text: String, timeZone: TimeZone) -> Date? {
        var digits = Substring(text)
        var zone = timeZone
        if digits.hasSuffix("Z") || digits.hasSuffix("z") {
            digits = digits.dropLast()
            zone = TimeZone(identifier: "UTC")!
        }
        guard [8, 12, 14].contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        func field(_ start: Int, _ length: Int) -> Int? {
            guard start + length <= digits.count else { return nil }
            let from = digits.index(digits.startIndex, offsetBy: start)
            return Int(digits[from..<digits.index(from, offsetBy: length)])
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(
            year: field(0, 4), month: field(4, 2), day: field(6, 2),
            hour: field(8, 2) ?? 0, minute: field(10, 2) ?? 0, second: field(12, 2) ?? 0)
        guard let month = components.month, (1...12).contains(month),
              let day = components.day, (1...31).contains(day),
              let hour = components.hour, hour < 24, let minute = components.minute, minute < 60,
              let second = components.second, second < 60 else { return nil }
        return calendar.date(from: components)
    }
}
