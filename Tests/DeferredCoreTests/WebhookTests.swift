@testable import DeferredCore
import DeferredTestSupport
import Foundation
import Testing

struct WebhookTests {
    // GitHub's documented test vector.
    let secret = "It's a Secret to Everybody"
    let body = Data("Hello, World!".utf8)
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    @Test func matchesGitHubsTestVector() throws {
        #expect(WebhookSignature.sign(body: body, secret: secret) == expected)
        try WebhookSignature.verify(header: expected, body: body, secret: secret)
    }

    @Test func refusesMissingMalformedAndWrongSignatures() {
        #expect(throws: WebhookSignature.Failure.missing) { try WebhookSignature.verify(header: nil, body: body, secret: secret) }
        #expect(throws: WebhookSignature.Failure.malformed) { try WebhookSignature.verify(header: "sha1=abc", body: body, secret: secret) }
        #expect(throws: WebhookSignature.Failure.mismatch) {
            try WebhookSignature.verify(header: expected, body: Data("Hello, World?".utf8), secret: secret)
        }
        #expect(throws: WebhookSignature.Failure.mismatch) { try WebhookSignature.verify(header: expected, body: body, secret: "other") }
    }

    let project = ProjectConfig(name: "p", repository: "Codertocat/Hello-World", command: "true", hosts: ["h"])

    @Test func aPushFixtureBecomesATriggerForItsExactCommit() throws {
        let event = try PushEvent.parse(try Fixtures.data("github/push-new-branch.json"))
        var branches = project
        branches.branches = ["**"]
        guard case .run(let trigger) = try event.decide(for: branches, delivery: "d-1") else {
            Issue.record("push was not run"); return
        }
        #expect(trigger.commit == event.after)
        #expect(trigger.commit.count == 40)
        #expect(trigger.ref == "refs/heads/master")
        #expect(trigger.repository == "Codertocat/Hello-World")
        #expect(trigger.cloneURL == "https://github.com/Codertocat/Hello-World.git")
    }

    @Test func aTagDeletionIsIgnoredSayingWhy() throws {
        let event = try PushEvent.parse(try Fixtures.data("github/push-tag-deleted.json"))
        guard case .ignore(let why) = try event.decide(for: project, delivery: "d-2") else {
            Issue.record("tag deletion was run"); return
        }
        #expect(why.contains("deletes"))
    }

    @Test func aBranchOutsideTheGlobsIsIgnored() throws {
        let event = try PushEvent.parse(try Fixtures.data("github/push-new-branch.json"))
        var only = project
        only.branches = ["release/*"]
        guard case .ignore(let why) = try event.decide(for: only, delivery: "d-3") else {
            Issue.record("branch outside globs was run"); return
        }
        #expect(why.contains("master"))
    }

    @Test func malformedPayloadsSayWhatIsWrong() {
        #expect(throws: PushRejection.self) { try PushEvent.parse(Data("{not json".utf8)) }
        #expect(throws: PushRejection.malformed("the payload has no 'repository'")) {
            try PushEvent.parse(Data(#"{"ref":"refs/heads/main","after":"x"}"#.utf8))
        }
    }

    @Test(arguments: [
        ("main", ["main"], true), ("feature/x", ["*"], false), ("feature/x", ["**"], true),
        ("feature/x", ["feature/*"], true), ("wip/x", ["**", "!wip/*"], false), ("v1", ["v[0-9]"], true),
        ("main", [], false),
    ])
    func branchGlobs(branch: String, patterns: [String], allowed: Bool) {
        #expect(BranchGlob.allows(branch, patterns: patterns) == allowed)
    }

    @Test(arguments: [
        ("refs/heads/main", true), ("refs/heads/$(touch${IFS}x);`id`|&", true),
        ("refs/heads/a b", false), ("refs/heads/../x", false), ("refs/heads/x.lock", false),
        ("refs/heads/a\u{1}", false), ("main", false), ("refs/heads/-x/..", false),
    ])
    func gitRefNames(ref: String, valid: Bool) {
        #expect(GitRefName.isValid(ref) == valid)
    }

    /// The same verdict as git's own `git check-ref-format` on names at each rule's edge.
    @Test func refNamesAsGitJudgesThem() throws {
        let names = [
            "refs/heads/main", "refs/heads/feature/x-1", "refs/heads/ümlaut", "refs/heads/x.locked", "refs/heads/lock",
            "refs/heads/a.b", "refs/tags/v1.0", "refs/heads/.hidden", "refs/heads/a/.b", "refs/heads/a.lock", "refs/heads/a.lock/b",
            "refs/heads/.lock", "refs/heads/a..b", "refs/heads/a@{1}", "refs/heads/a@b", "refs/heads//x", "refs/heads/x/",
            "refs/heads/x.", "refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a?", "refs/heads/a*", "refs/heads/a[b",
            "refs/heads/a\\b", "refs/heads/a b", "refs/heads/a\u{7f}", "refs/heads/a\u{1f}", "refs/heads/a\u{85}",
        ]
        for name in names {
            let git = try SpawnedProcess(executable: "/usr/bin/git", arguments: ["check-ref-format", name])
            #expect(GitRefName.isValid(name) == (git.waitForExit() == 0), "\(name.debugDescription)")
        }
    }

    @Test func aCommitIdIsFortyASCIIHexDigits() throws {
        let fullwidth = String(repeating: "\u{FF10}", count: 40)   // fullwidth 0: a hex digit to Character, not to git
        for after in [fullwidth, String(repeating: "g", count: 40), String(repeating: "a", count: 39)] {
            let event = PushEvent(ref: "refs/heads/main", after: after, repository: .init(fullName: "Codertocat/Hello-World", cloneURL: "https://x/y.git"))
            #expect(throws: PushRejection.malformed("'after' is not a 40-digit commit SHA")) { try event.decide(for: project, delivery: "d") }
        }
        let upper = PushEvent(ref: "refs/heads/main", after: String(repeating: "AB", count: 20),
                              repository: .init(fullName: "Codertocat/Hello-World", cloneURL: "https://x/y.git", defaultBranch: "main"))
        guard case .run(let trigger) = try upper.decide(for: project, delivery: "d") else { Issue.record("not run"); return }
        #expect(trigger.commit == String(repeating: "ab", count: 20))
    }
}

/// A pattern without `*`, `?` or `[` is compared as it is: the same answers as the matcher's.
@Suite struct PlainBranchPatternTests {
    @Test func aPlainNameMatchesWhatTheMatcherMatches() {
        var generator = SeededGenerator(seed: 7)
        let pieces = ["main", "dev", "/", "release", "é", "e\u{301}", "-", ".", "x"]
        for _ in 0..<2_000 {
            let name = { (0..<Int.random(in: 0...3, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined() }
            let pattern = name(), branch = Bool.random(using: &generator) ? pattern : name()
            #expect(BranchGlob(pattern).matches(branch) == BranchGlob.match(Array(pattern), Array(branch)), "'\(pattern)' '\(branch)'")
            #expect(BranchGlob("!" + pattern).matches(branch) == BranchGlob.match(Array(pattern), Array(branch)))
        }
    }
}
