import DeferredCloud
import DeferredDemo
import DeferredTestSupport
import Foundation
import Testing

/// The EC2 client against a real EC2 API: moto_server on loopback.
@Suite(.serialized) struct EC2ClientTests {
    @Test func runsDescribesStopsStartsAndTerminatesTaggedInstances() async throws {
        let moto = try await ThrowawayMoto.account()
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let launched = try await ec2.runInstances(EC2LaunchRequest(
            imageID: "ami-deferred1", instanceType: "t3.micro", count: 2, userData: "#cloud-config\n",
            tags: ["managed-by": "deferred", "deferred-fleet": "spot-builders", "deferred-project": "resume"]))
        #expect(launched.count == 2)
        #expect(launched.allSatisfy { $0.imageID == "ami-deferred1" && $0.instanceType == "t3.micro" })
        _ = try await ec2.runInstances(EC2LaunchRequest(imageID: "ami-other", instanceType: "t3.micro"))

        let tagged = try await ec2.describeInstances(filters: ["tag:managed-by": ["deferred"], "instance-state-name": ["pending", "running"]])
        #expect(Set(tagged.map(\.id)) == Set(launched.map(\.id)))
        #expect(tagged.allSatisfy { $0.tags["deferred-fleet"] == "spot-builders" && $0.privateAddress != nil })

        let id = launched[0].id
        _ = try await ec2.stopInstances(ids: [id])
        // moto moves stopping → stopped at the next DescribeInstances.
        _ = try await ec2.describeInstances(ids: [id])
        #expect(try await ec2.describeInstances(ids: [id]).first?.state == "stopped")
        let started = try await ec2.startInstances(ids: [id])
        #expect(started[id] == "pending")
        #expect(try await ec2.describeInstances(ids: [id]).first?.state == "running")
        let terminated = try await ec2.terminateInstances(ids: [id])
        #expect(terminated[id] == "shutting-down")
    }

    @Test func anUnknownInstanceIsATypedError() async throws {
        let moto = try await ThrowawayMoto.account()
        let ec2 = EC2Client(region: "us-east-1", credentials: moto.credentials, endpoint: moto.endpoint)
        let error = await #expect(throws: CloudError.self) { try await ec2.describeInstances(ids: ["i-0000000000000dead"]) }
        guard case .api(let aws)? = error else { Issue.record("not an API error: \(String(describing: error))"); return }
        #expect(aws.code == .instanceNotFound)
        #expect(aws.status == 400)
        #expect(!aws.isRetryable)
    }

    /// moto checks SigV4 once its first four actions are spent: an IAM user with a policy and
    /// a key made through our signer, then EC2 calls signed with that key. A wrong secret fails.
    @Test func motoVerifiesOurSignatures() async throws {
        let moto = try await ThrowawayMoto.start(checkSignaturesAfter: 4)
        defer { moto.stop() }
        let key = try await moto.makeUser()
        let ec2 = EC2Client(region: "us-east-1", credentials: key, endpoint: moto.endpoint)
        let launched = try await ec2.runInstances(EC2LaunchRequest(imageID: "ami-signed", instanceType: "t3.micro", tags: ["managed-by": "deferred"]))
        #expect(try await ec2.describeInstances(ids: launched.map(\.id)).count == 1)

        let forged = EC2Client(region: "us-east-1", credentials: AWSCredentials(accessKeyID: key.accessKeyID, secretAccessKey: key.secretAccessKey + "x"),
                               endpoint: moto.endpoint)
        let error = await #expect(throws: CloudError.self) { try await forged.describeInstances() }
        guard case .api(let aws)? = error else { Issue.record("not an API error: \(String(describing: error))"); return }
        #expect(aws.isAuthFailure, "\(aws)")
    }
}
