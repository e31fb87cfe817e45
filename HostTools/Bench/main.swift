// tdos-bench: the figures behind `make bench`. Each group prints lines prefixed
// with its name; run one with `tdos-bench wire` or all with no argument.
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
