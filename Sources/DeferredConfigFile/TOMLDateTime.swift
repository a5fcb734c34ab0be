/// A TOML date, time or both, with or without an offset: the four kinds TOML 1.0 knows
/// (offset date-time, local date-time, local date, local time). Fractions past nanoseconds
/// are cut, as TOML allows.
public struct TOMLDateTime: Sendable, Equatable, CustomStringConvertible {
    public struct Date: Sendable, Equatable {
        public var year: Int, month: Int, day: Int
    }

    public struct Time: Sendable, Equatable {
        public var hour: Int, minute: Int, second: Int, nanosecond: Int
    }

    public var date: Date?
    public var time: Time?
    /// Minutes east of UTC; nil for a local (zone-less) value.
    public var offsetMinutes: Int?

    /// RFC 3339, as TOML writes it: `1979-05-27T07:32:00.5-07:00`.
    public var description: String {
        var text = ""
        if let date { text += pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2) }
        if let time {
            if date != nil { text += "T" }
            text += pad(time.hour, 2) + ":" + pad(time.minute, 2) + ":" + pad(time.second, 2)
            if time.nanosecond > 0 {
                var fraction = pad(time.nanosecond, 9)
                while fraction.hasSuffix("0") { fraction.removeLast() }
                text += "." + fraction
            }
        }
        if let offsetMinutes {
            if offsetMinutes == 0 { return text + "Z" }
            let size = abs(offsetMinutes)
            text += (offsetMinutes < 0 ? "-" : "+") + pad(size / 60, 2) + ":" + pad(size % 60, 2)
        }
        return text
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
