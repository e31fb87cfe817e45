// swift-tools-version:5.9
// TDOS: no package dependencies (the user's rule). Firmware/Core and Firmware/Node
// must also compile as Embedded Swift for armv6m; `make embedded-check` proves it.
import PackageDescription

let releaseSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "TDOS",
    products: [
        .executable(name: "tdos", targets: ["tdos"]),
        .executable(name: "tdos-bench", targets: ["tdos-bench"]),
        .executable(name: "tdos-sim", targets: ["tdos-sim"]),
    ],
    targets: [
        // Release builds drop the dynamic exclusivity checks, as the board's
        // Embedded Swift does (its swift_beginAccess is empty): they cost every
        // access to a class's stored struct (runtime.mesh, .scheduler) a
        // thread-local lookup on the datagram path. Debug builds, and so
        // `swift test`, keep them.
        .target(name: "TDOSCore", path: "Firmware/Core", swiftSettings: releaseSettings),
        .target(name: "TDOSNode", dependencies: ["TDOSCore"], path: "Firmware/Node", swiftSettings: releaseSettings),
        // Host-only C: the x86-64 SHA extensions, recvmmsg, CPU pinning (HostTools/HostC/include/tdos_host.h).
        .target(name: "TDOSHostC", path: "HostTools/HostC"),
        // The host side too: the POSIX platform and UDPTransport (classes whose
        // stored buffers every datagram touches), the CLI's MeshClient and the
        // bench's clients, where each `mesh.` access paid the same lookup.
        .target(name: "TDOSHost", dependencies: ["TDOSCore", "TDOSNode", "TDOSHostC"], path: "HostTools/Host",
                swiftSettings: releaseSettings),
        .executableTarget(name: "tdos", dependencies: ["TDOSHost"], path: "HostTools/CLI", swiftSettings: releaseSettings),
        .executableTarget(name: "tdos-bench", dependencies: ["TDOSHost", "TDOSHostC"], path: "HostTools/Bench",
                          swiftSettings: releaseSettings),
        .executableTarget(name: "tdos-sim", dependencies: ["TDOSHost"], path: "HostTools/Sim"),
        .testTarget(
            name: "TDOSTests",
            dependencies: ["TDOSCore", "TDOSNode", "TDOSHost", "TDOSHostC"],
            path: "Tests",
            exclude: ["Embedded", "Fuzz", "tools"],
            sources: ["CoreTests", "Vectors"]
        ),
    ]
)
