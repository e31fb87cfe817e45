// swift-tools-version:5.9
// TDOS: no package dependencies (the user's rule). Firmware/Core and Firmware/Node
// must also compile as Embedded Swift for armv6m; `make embedded-check` proves it.
import PackageDescription

let package = Package(
    name: "TDOS",
    products: [
        .executable(name: "tdos-bench", targets: ["tdos-bench"]),
    ],
    targets: [
        .target(name: "TDOSCore", path: "Firmware/Core"),
        .target(name: "TDOSHost", dependencies: ["TDOSCore"], path: "HostTools/Host"),
        .executableTarget(name: "tdos-bench", dependencies: ["TDOSHost"], path: "HostTools/Bench"),
        .testTarget(
            name: "TDOSTests",
            dependencies: ["TDOSCore", "TDOSHost"],
            path: "Tests",
            exclude: ["Embedded", "Fuzz", "tools"],
            sources: ["CoreTests", "Vectors"]
        ),
    ]
)
