/// An error answer from an AWS API, with its code typed where deferred acts on it: callers
/// match the static members; codes not listed still carry their text.
public struct AWSError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let throttling = Code("Throttling")
        public static let requestLimitExceeded = Code("RequestLimitExceeded")
        public static let insufficientInstanceCapacity = Code("InsufficientInstanceCapacity")
        public static let spotMaxPriceTooLow = Code("SpotMaxPriceTooLow")
        public static let maxSpotInstanceCountExceeded = Code("MaxSpotInstanceCountExceeded")
        public static let instanceNotFound = Code("InvalidInstanceID.NotFound")
        public static let incorrectInstanceState = Code("IncorrectInstanceState")
        public static let authFailure = Code("AuthFailure")
        public static let signatureDoesNotMatch = Code("SignatureDoesNotMatch")
        public static let invalidClientTokenId = Code("InvalidClientTokenId")
        public static let unauthorizedOperation = Code("UnauthorizedOperation")
        /// No AWS error body: a 5xx or a proxy's answer.
        public static let serviceUnavailable = Code("ServiceUnavailable")
        public static let internalError = Code("InternalError")
    }

    public let code: Code
    public let message: String
    public let status: Int
    public let action: String

    public init(code: Code, message: String, status: Int, action: String) {
        self.code = code
        self.message = message
        self.status = status
        self.action = action
    }

    /// Worth trying again after a pause: throttling and the service's own failures.
    public var isRetryable: Bool {
        isThrottling || [.serviceUnavailable, .internalError].contains(code) || status >= 500
    }

    /// The API asked for fewer requests (any service's spelling of it, or a bare 429).
    public var isThrottling: Bool {
        [.throttling, .requestLimitExceeded].contains(code) || code.rawValue.hasSuffix("Throttling") || status == 429
    }

    /// Spot capacity or price said no: on-demand may still say yes.
    public var isSpotRefusal: Bool {
        [.insufficientInstanceCapacity, .spotMaxPriceTooLow, .maxSpotInstanceCountExceeded].contains(code)
    }

    /// The credentials or their rights are wrong: retrying will not help.
    public var isAuthFailure: Bool {
        [.authFailure, .signatureDoesNotMatch, .invalidClientTokenId, .unauthorizedOperation].contains(code)
    }

    public var description: String {
        let hint = isAuthFailure ? " (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and the IAM policy)" : ""
        return "\(action) failed with \(status) \(code): \(message)\(hint)"
    }
}
