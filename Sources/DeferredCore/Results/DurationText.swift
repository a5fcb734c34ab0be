import Foundation

/// Spans of time as people read them in a table: `deferred hosts` and the dashboard.
public enum DurationText {
    /// Whole minutes, then hours and minutes: how long a host has been idle (`12m`, `1h05m`).
    public static func minutes(_ seconds: TimeInterval) -> String {
        let minutes = Int(max(0, seconds) / 60)
        return minutes < 60 ? "\(minutes)m" : "\(minutes / 60)h\(String(format: "%02d", minutes % 60))m"
    }

    /// To the millisecond under a second, the tenth under a minute, then minutes and seconds:
    /// how long a job waited or ran (`850 ms`, `4.2 s`, `3m12s`).
    public static func precise(_ seconds: TimeInterval) -> String {
        let seconds = max(0, seconds)
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        return whole < 3600 ? "\(whole / 60)m\(String(format: "%02d", whole % 60))s"
                            : "\(whole / 3600)h\(String(format: "%02d", whole % 3600 / 60))m"
    }
}
