@testable import DeferredStore
import Foundation
import GRDB
import Testing

/// The intake's prepared inserts name their columns and give their values by hand: these check
/// them against what GRDB's Codable insert would have written and against the tables themselves,
/// so that a column added to a record or a table cannot be left out or given another's value.
@Suite struct PreparedInsertTests {
    /// Each record filled with values that differ column from column.
    static var samples: [any PreparedInsert & EncodableRecord] { [
        JobRecord(id: "j1", token: "t1", project: "p", trigger: "{}", status: "queued", hostName: "h", attempts: 2,
                  notBefore: 3, queuedAt: 4, startedAt: 5, finishedAt: 6, delivery: "d", expiredAt: 7, interruptedStarts: 8,
                  rerunOf: "j0", cancelToken: "c", cancelRequestedBy: "who"),
        JobEventRecord(id: nil, jobID: "j1", at: 9, status: "running", detail: "why", hostState: "waking"),
        JobPayloadRecord(jobID: "j1", StoredPayload(body: Data("body".utf8), compressed: true)),
        DeliveryRecord(guid: "g", jobID: "j1", receivedAt: 10, bodySHA256: "sha"),
        JobOutputRecord(id: nil, jobID: "j1", at: 11, stream: "stdout", text: "out"),
    ] }

    @Test(arguments: 0..<samples.count)
    func valuesGoToTheColumnsGRDBWouldHaveWritten(_ index: Int) throws {
        let record = Self.samples[index]
        let expected = try record.databaseDictionary
        let columns = type(of: record).insertColumns
        #expect(columns.count == record.insertValues.count)
        for (column, value) in zip(columns, record.insertValues) {
            #expect(expected[column] == (value?.databaseValue ?? .null), "\(column) of \(type(of: record))")
        }
        // What the insert leaves out is only the row id SQLite gives, nil in the record.
        let left = Set(expected.keys).subtracting(columns)
        #expect(left.isSubset(of: ["id"]) && left.allSatisfy { expected[$0] == .null }, "\(type(of: record)) leaves out \(left)")
    }

    @Test func everyColumnOfTheTablesIsSetOrIsTheRowID() async throws {
        try await TemporaryFolder.with("prepared") { folder in
            let store = try SQLiteJobStore(path: folder + "/state.sqlite")
            for record in Self.samples {
                let type = type(of: record)
                let name = type.databaseTableName
                let table = try await store.read { db in try db.columns(in: name).map(\.name) }
                #expect(Set(table).subtracting(type.insertColumns).isSubset(of: ["id"]), "\(type.databaseTableName): \(table)")
                #expect(Set(type.insertColumns).isSubset(of: table), "\(type.databaseTableName): \(type.insertColumns)")
            }
        }
    }
}
