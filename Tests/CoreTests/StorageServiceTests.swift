import Testing
@testable import TDOSCore

@Suite struct StorageServiceTests {
    func appendArgs(seq: UInt64, kind: UInt8, time: UInt64, payload: [UInt8]) -> [UInt8] {
        var w = CBORWriter()
        w.mapHeader(count: 4)
        w.unsigned(1); w.unsigned(seq)
        w.unsigned(2); w.unsigned(UInt64(kind))
        w.unsigned(3); w.unsigned(time)
        w.unsigned(4); w.bytes(payload)
        return w.bytes
    }

    /// Decodes a log_query result: records and cursor.
    func decodeQuery(_ result: [UInt8]) throws -> (records: [LogRecord], cursor: LogPosition?) {
        var records: [LogRecord] = []
        var cursor: LogPosition?
        try forEachKey(result) { (key, r) throws(WireError) in
            switch key {
            case 1:
                for _ in 0..<(try r.arrayHeader()) {
                    _ = try r.arrayHeader()
                    records.append(LogRecord(source: try readU32(&r), sequence: try r.unsigned(), timeMs: try r.unsigned(),
                                             kind: try readU8(&r), payload: Array(try r.bytes())))
                }
            case 2:
                _ = try r.arrayHeader()
                cursor = LogPosition(segment: try readU32(&r), offset: try readU32(&r))
            default: try r.skip()
            }
        }
        return (records, cursor)
    }

    @Test func appendAndQueryThroughRequests() throws {
        var log = try RecordLog(flash: RAMLogFlash(sectorCount: 8, sectorSize: 4096, pageSize: 256))
        // 40 records of 100 bytes from two nodes: a query pages through them.
        for i in 0..<40 {
            let req = Request(service: 1, operation: .logAppend,
                              arguments: appendArgs(seq: UInt64(i / 2), kind: UInt8(i % 2), time: UInt64(i),
                                                    payload: [UInt8](repeating: UInt8(i), count: 100)))
            let resp = LogService.serve(req, from: UInt32(7 + i % 2), nowMs: 1_000, log: &log)
            #expect(resp.status == 0 && !resp.result.isEmpty)
        }
        // A retry is acked as a duplicate.
        let retry = LogService.serve(Request(service: 1, operation: .logAppend,
                                             arguments: appendArgs(seq: 19, kind: 1, time: 39, payload: [1])),
                                     from: 8, nowMs: 1_000, log: &log)
        #expect(retry.result == [0xA1, 0x03, 0xF5])
        var all: [LogRecord] = []
        var cursor: LogPosition?
        var pages = 0
        repeat {
            var w = CBORWriter()
            w.mapHeader(count: cursor == nil ? 1 : 2)
            w.unsigned(1); w.unsigned(7)
            if let c = cursor {
                w.unsigned(6); w.arrayHeader(count: 2); w.unsigned(UInt64(c.segment)); w.unsigned(UInt64(c.offset))
            }
            let resp = LogService.serve(Request(service: 1, operation: .logQuery, arguments: w.bytes), from: 1, nowMs: 0, log: &log)
            #expect(resp.status == 0)
            #expect(resp.encode().count <= Frame.payloadBytesMaxUncompressed)
            let page = try decodeQuery(resp.result)
            all += page.records
            cursor = page.cursor
            pages += 1
        } while cursor != nil && pages < 20
        #expect(pages > 2, "pages bounded by the frame size")
        #expect(all.count == 20 && all.allSatisfy { $0.source == 7 })
        #expect(all.map(\.sequence) == Array(0..<20))
        // Bad arguments.
        #expect(LogService.serve(Request(service: 1, operation: .logAppend, arguments: [0xA0]), from: 1, nowMs: 0, log: &log).status
                == Status.badArguments.rawValue)
        #expect(LogService.serve(Request(service: 1, operation: .logQuery, arguments: [0xFF]), from: 1, nowMs: 0, log: &log).status
                == Status.badArguments.rawValue)
    }
}
