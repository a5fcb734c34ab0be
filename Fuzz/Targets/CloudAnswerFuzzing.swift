import DeferredCloud

/// What a cloud's JSON API answers (Hetzner, DigitalOcean): its servers, lists, actions, error
/// bodies and rate-limit headers. An API, or whatever answers in its place, is outside too.
enum CloudAnswerFuzzing {
    static func run(_ bytes: [UInt8]) {
        CloudAnswers.read(bytes)
    }
}
