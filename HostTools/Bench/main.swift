// tdos-bench: the figures behind `make bench`. Each group prints lines prefixed
// with its name; run one with `tdos-bench wire` or all with no argument.
import TDOSHost

// The CPU's SHA-256 instructions when it has them, as `tdos` (the node) uses them.
let hardwareSHA256 = installHostCrypto()
let groups: [(String, () -> Void)] = [
    ("wire", wireBench),
    ("sim", simBench),
    ("rpc", rpcBench),
    ("runtime", runtimeBench),
    ("storage", storageBench),
]
let wanted = CommandLine.arguments.dropFirst()
for (name, run) in groups where wanted.isEmpty || wanted.contains(name) {
    run()
}
