@testable import DeferredHTTP
import DeferredTestSupport
import Foundation
import Testing

/// Form bodies are read by Hummingbird's decoder: what a sender means is read, and whatever
/// else arrives is a 400, never a trap.
struct FormFieldsTests {
    struct Webhook: Decodable { var payload: String? }

    @Test func aFormFieldIsReadDecoded() throws {
        #expect(try RequestBody.form(Webhook.self, from: Data("payload=%7B%22a%22%3A+1%7D".utf8)).payload == #"{"a": 1}"#)
        #expect(try RequestBody.form(Webhook.self, from: Data("other=1&payload=x+y".utf8)).payload == "x y")
        #expect(try RequestBody.form(Webhook.self, from: Data("other=1".utf8)).payload == nil)
    }

    /// Random bodies from the characters that give forms their shape (brackets, `=`, `&`, `%`),
    /// and random bytes: each is read or refused with 400.
    @Test func hostileBodiesAreReadOrRefusedWithA400() {
        var generator = SeededGenerator(seed: 0x5eed)
        let shapes = Array("[]=&%+.0aZ_".utf8)
        var refused = 0
        for round in 0..<5_000 {
            let length = Int.random(in: 0...40, using: &generator)
            let body = (0..<length).map { _ in
                round % 2 == 0 ? shapes.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
            }
            do {
                _ = try RequestBody.form(Webhook.self, from: Data(body))
            } catch let error as APIError {
                #expect(error.status == .badRequest)
                refused += 1
            } catch {
                Issue.record("\(body) failed with \(error), not an APIError")
            }
        }
        #expect(refused > 0, "some of the bodies are not forms")
    }
}
