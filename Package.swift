// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "stockpile",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stockpile", targets: ["stockpile"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/yaslab/CSV.swift.git", from: "2.5.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // The system library: libpq through pkg-config.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The only Swift that touches libpq.
        .target(name: "PQ", dependencies: [
            "CLibPQ", "StockpileCore",  // for CivilDate, the calendar arithmetic both share
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The domain, Foundation only.
        .target(name: "StockpileCore"),
        // All SQL-calling Swift.
        .target(name: "StockpilePostgres", dependencies: [
            "PQ", "StockpileCore",
            .product(name: "CSV", package: "CSV.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], resources: [.copy("sql")]),
        .target(name: "StockpileHTTP", dependencies: [
            "StockpilePostgres", "StockpileCore", "PQ",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Mustache", package: "swift-mustache"),
        ], resources: [.copy("openapi.yaml"), .copy("pages")]),
        // `stockpile bench …`: load generators and their baselines (pgbench), measured in one run.
        .target(name: "StockpileBench", dependencies: [
            "StockpileHTTP", "StockpilePostgres", "PQ",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ], resources: [.copy("ortools_oracle.py")]),
        // Starts the throwaway cluster the database tests share (the same EmbeddedPostgres as serve).
        .target(name: "StockpileTestSupport", dependencies: ["PQ", "StockpilePostgres"]),
        .executableTarget(name: "stockpile", dependencies: [
            "StockpileHTTP", "StockpilePostgres", "StockpileCore", "PQ", "StockpileBench",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PQTests", dependencies: ["PQ", "StockpileTestSupport"]),
        // The scan vectors are read by path (ScanVectorTests) and by deploy/scan-js.sh, not bundled.
        .testTarget(name: "StockpileCoreTests", dependencies: ["StockpileCore"], exclude: ["scan-vectors.json"]),
        .testTarget(name: "StockpilePostgresTests", dependencies: ["StockpilePostgres", "StockpileCore", "PQ", "StockpileTestSupport"]),
        .testTarget(name: "StockpileHTTPTests", dependencies: [
            "StockpileHTTP", "StockpilePostgres", "PQ", "StockpileTestSupport",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
