// tdos: inspect and drive a TDOS mesh, real or simulated. Every command that
// talks to the mesh joins it as a client node speaking the authenticated
// protocol (key: --key-file, $TDOS_KEY_FILE or $TDOS_KEY; the simulator's
// development key otherwise, with a warning).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import TDOSCore
import TDOSNode
import TDOSHost

installHostCrypto()  // the CPU's SHA-256 instructions, when it has them

let usage = """
usage: tdos <command> [options]

mesh inspection (any mesh on this machine's loopback range, or --broadcast):
  tdos nodes [--json] [--wait MS]             nodes, their state, uptime and services
  tdos services [--json] [--wait MS]          every service instance, primary and backups
  tdos read SERVICE [--timeout MS] [--version X.Y.Z] [--json]
                                              read a sensor through the mesh (failover included)
  tdos watch [--interval MS]                  live view of nodes and readings (Ctrl-C to stop)
  tdos watch SERVICE [--min-interval MS] [--max-interval MS] [--threshold X] [--lease MS]
            [--count N] [--version X.Y.Z] [--json]
                                              subscribe: stream every reading the service pushes
                                              (on change by X, at most every min, at least every max
                                              interval), following failover to a backup;
                                              --json: one JSON object per line

node operations (one node, no failover; NODE is a name or a hex id from `tdos nodes`):
  tdos call NODE OP [ARG] [--timeout MS] [--json]   OP: status, metrics, tasks, config-get PATH, read, ... or a number
  tdos metrics [NODE] [--json | --prometheus]       metrics of one node or of every live node
  tdos metrics --serve PORT [--listen ADDR]         Prometheus endpoint: GET /metrics scrapes the whole mesh
  tdos tasks NODE [--json]                          the node's scheduler tasks (state, ticks, failures, watchdog...)
  tdos logs [--node NODE] [--service SVC] [--kind K|weather] [--since 30s|5m|2h] [--limit N] [--follow]
            [--replica STORAGE] [--json]
                                              records of the storage node's durable log, oldest first
  tdos config set PATH=VALUE... [--timeout MS] [--json]   change the mesh's config (committed by the storage replicas)
  tdos config get [PATH] [--json]             the committed config (version, leader, values)
  tdos config history [--json]                committed changes, oldest first
  tdos config push PATH=VALUE... [--version N] [--timeout MS] [--json]   (a mesh without storage nodes)
                                              a versioned config update to every live node (applied,
                                              persisted, acknowledged; an older version never wins);
                                              VALUE: number, true/false, text, or null to reset

running nodes:
  tdos node --role kernel|sensor|storage --name NAME [--service SVC[:backup[N]]]...
            [--calibration C] [--seed N] [--port P] [--heartbeat-ms MS]
            [--poll-us US]   after traffic, poll the socket US µs before blocking
                             (default 100, 0 = off; or $TDOS_POLL_US; host only)
  tdos sim up [--replicas N]                  start the simulator mesh (6 nodes; N storage replicas); Ctrl-C stops it
  tdos sim down | status | kill NODE | restart NODE

boards (docs/FIRMWARE.md):
  tdos uf2 IMAGE.elf -o IMAGE.uf2 [--merge CONFIG.uf2]   firmware ELF -> UF2 (validated)
  tdos uf2 --validate FILE.uf2 [--kind image|config]     check a UF2 before copying it to a board
  tdos provision --ssid S [--psk P] --name N --role kernel|sensor|storage [--service SVC[:backupN]]...
            --key-file F -o CONFIG.uf2 [--sensors internal-temp,light,sht3x] [--display pico-display]
            [--country XX] [--node-id HEX] [--port P]  the config region's UF2 for one board

common options:
  --key-file FILE     the mesh key (32 bytes raw or hex); or $TDOS_KEY_FILE / $TDOS_KEY
  --port-base P       loopback discovery range start (default 42100, 32 ports)
  --broadcast ADDR    a real network instead of loopback: subnet broadcast address (port 4210, --port P)
  --bind ADDR         this host's address on that network (e.g. 10.42.0.1 in `scripts/netns-mesh.sh`)
  --help              this text
"""

/// Every command; a new command adds one line here and its usage above.
let commands: [String: (Args) throws -> Int32] = [
    "nodes": nodesCommand,
    "services": servicesCommand,
    "read": readCommand,
    "watch": watchCommand,
    "node": nodeCommand,
    "sim": simCommand,
    "call": callCommand, "metrics": metricsCommand, "tasks": tasksCommand, "config": configCommand, "logs": logsCommand,
    "uf2": uf2Command,
    "provision": provisionCommand,
]
let switches: Set<String> = ["json", "help", "prometheus"]

setvbuf(stdout, nil, _IOLBF, 0)
let argv = CommandLine.arguments
guard argv.count >= 2, argv[1] != "--help", argv[1] != "-h", argv[1] != "help" else {
    print(usage)
    exit(argv.count >= 2 ? 0 : 2)
}
guard let command = commands[argv[1]] else {
    FileHandle.standardError.write("tdos: unknown command \(argv[1])\n\n\(usage)\n".data(using: .utf8)!)
    exit(2)
}
do {
    let args = try Args(argv.dropFirst(2), switches: switches)
    if args.switches.contains("help") { print(usage); exit(0) }
    exit(try command(args))
} catch let e as UsageError {
    FileHandle.standardError.write("tdos: \(e.message)\n\n\(usage)\n".data(using: .utf8)!)
    exit(2)
} catch let e as HostError {
    fail(e.description)
} catch {
    fail("\(error)")
}
