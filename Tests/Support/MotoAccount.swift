import DeferredCloud
import Foundation
import Synchronization

/// An AWS account of its own on the moto_server this test run shares: its instances, buckets
/// and users are seen by no other test, and nothing needs resetting. moto keeps each account
/// apart by the access key a request is signed with; a role assumed in a new account gives one.
public struct MotoAccount: Sendable {
    public let endpoint: String
    public let id: String
    /// Session credentials (with a token), which every request of the test signs with.
    public let credentials: AWSCredentials

    /// S3 bucket names are global in moto as in AWS: a test's buckets carry its account's id.
    public func bucket(_ name: String) -> String { "\(name)-\(id)" }
}

extension ThrowawayMoto {
    /// A new account on the run's shared moto_server, started at the first call. A server
    /// of its own costs a test about 3 s (start-up and moto's first import of EC2); an account
    /// costs about 0.1 s.
    public static func account() async throws -> MotoAccount {
        let moto = try await shared.server()
        let id = String(accounts.withLock { next in defer { next += 1 }; return next })
        let sts = AWSQueryClient(service: "sts", version: "2011-06-15", region: "us-east-1",
                                 credentials: AWSCredentials(accessKeyID: "AKIDSHARED", secretAccessKey: "unchecked"), endpoint: moto.endpoint)
        let role = try await sts.call("AssumeRole", [("RoleArn", "arn:aws:iam::\(id):role/deferred-test"), ("RoleSessionName", "deferred-test")])
        guard let key = role.value("AssumeRoleResult/Credentials/AccessKeyId"),
              let secret = role.value("AssumeRoleResult/Credentials/SecretAccessKey"),
              let token = role.value("AssumeRoleResult/Credentials/SessionToken") else {
            throw Failure.didNotStart(log: "AssumeRole gave no credentials")
        }
        return MotoAccount(endpoint: moto.endpoint, id: id,
                           credentials: AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token))
    }

    /// Twelve digits, as AWS account ids are; moto's own default is 123456789012.
    private static let accounts = Mutex(200_000_000_001)
    private static let shared = SharedMoto()
}

/// Starts the shared server once, whichever test asks first.
private actor SharedMoto {
    private var starting: Task<ThrowawayMoto, any Error>?

    func server() async throws -> ThrowawayMoto {
        if let starting, let moto = try? await starting.value { return moto }
        let task = Task {
            guard let executable = Programs.path(of: "moto_server") else { throw ThrowawayMoto.Failure.notInstalled }
            let moto = try await ThrowawayMoto.launch(executable, checkSignaturesAfter: nil, outlivingNoTest: true)
            try await Self.warm(moto)
            return moto
        }
        starting = task
        return try await task.value
    }

    /// moto imports a service's world at its first request: EC2's took 2 s on an idle machine
    /// and over 30 s while the whole suite started, long enough for a test's RunInstances to
    /// time out, be sent again and launch twice (moto ignores `ClientToken`). The imports happen
    /// here instead, before any test gets its account, with all the time they need.
    private static func warm(_ moto: ThrowawayMoto) async throws {
        let anyone = AWSCredentials(accessKeyID: "AKIDWARMUP", secretAccessKey: "unchecked")
        let calls = [("ec2", "Action=DescribeInstances&Version=2016-11-15"), ("sts", "Action=GetCallerIdentity&Version=2011-06-15"),
                     ("iam", "Action=ListUsers&Version=2010-05-08")]
        for (service, query) in calls {
            var request = HTTPClientRequest(method: "POST", url: moto.endpoint + "/", headers: [
                (name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8"),
            ], body: Data(query.utf8), timeout: .seconds(300))
            SigV4(credentials: anyone, region: "us-east-1", service: service).authorize(&request)
            let answer = try await HTTPClient().send(request)
            guard answer.status == 200 else { throw ThrowawayMoto.Failure.didNotStart(log: "\(service) warm-up answered \(answer.status)") }
        }
        var buckets = HTTPClientRequest(method: "GET", url: moto.endpoint + "/", timeout: .seconds(300))
        buckets.headers.append((name: "x-amz-content-sha256", value: "UNSIGNED-PAYLOAD"))
        SigV4(credentials: anyone, region: "us-east-1", service: "s3").authorize(&buckets, payloadHash: "UNSIGNED-PAYLOAD")
        let answer = try await HTTPClient().send(buckets)
        guard answer.status == 200 else { throw ThrowawayMoto.Failure.didNotStart(log: "s3 warm-up answered \(answer.status)") }
    }
}
