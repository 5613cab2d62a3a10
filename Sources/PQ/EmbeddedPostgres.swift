import Foundation
import Logging

/// A private PostgreSQL cluster under a data folder: `initdb` on first use, `pg_ctl` to start and
/// stop, listening only on a Unix socket inside the folder. `serve` uses it when no DATABASE_URL
/// is given, the other commands share it, and the tests start a throwaway one with the same code.
public final class EmbeddedPostgres: Sendable {
    public let dataDirectory: URL
    public let port: Int
    public let superuser = "stockpile"
    /// fsync off and friends: only for throwaway test clusters, where losing data on a crash is fine.
    public let unsafeFastSettings: Bool
    let logger: Logger

    public var clusterDirectory: URL { dataDirectory.appendingPathComponent("pgdata") }
    public var socketDirectory: URL { dataDirectory.appendingPathComponent("run") }
    public var logFile: URL { dataDirectory.appendingPathComponent("postgresql.log") }

    public init(dataDirectory: URL, port: Int = 5432, unsafeFastSettings: Bool = false,
                logger: Logger = Logger(label: "stockpile.embedded-postgres")) {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.port = port
        self.unsafeFastSettings = unsafeFastSettings
        self.logger = logger
    }

    /// libpq keywords for a database in this cluster, as its superuser.
    public func connectionParameters(database: String = "stockpile") -> [(String, String)] {
        [("host", socketDirectory.path), ("port", String(port)), ("user", superuser), ("dbname", database)]
    }

    /// A URL form of the same, for tools such as psql and pgbench.
    public func url(database: String = "stockpile") -> String {
        let host = socketDirectory.path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketDirectory.path
        return "postgresql://\(superuser)@/\(database)?host=\(host)&port=\(port)"
    }

    // MARK: Starting and stopping

    /// Creates the cluster if needed and starts it unless it is already running.
    /// Returns true when this call started it (and so its caller should stop it).
    @discardableResult
    public func start() throws -> Bool {
        try initializeIfNeeded()
        if try isRunning() { return false }
        try prepareSocketDirectory()
        do {
            try runAsServerUser(try binary("pg_ctl"), ["-D", clusterDirectory.path, "-l", logFile.path,
                                                      "-w", "-t", "60", "-s", "start"])
        } catch {
            // Another process may have started it between our check and our start.
            if try isRunning() { return false }
            let tail = (try? String(contentsOf: logFile, encoding: .utf8))?.split(separator: "\n").suffix(15).joined(separator: "\n") ?? ""
            throw PQError.client("could not start PostgreSQL in \(clusterDirectory.path): \(error)\n\(tail)")
        }
        try createDatabaseIfNeeded("stockpile")
        logger.info("started embedded PostgreSQL", metadata: ["data": "\(clusterDirectory.path)"])
        return true
    }

    public func stop() throws {
        guard try isRunning() else { return }
        try runAsServerUser(try binary("pg_ctl"), ["-D", clusterDirectory.path, "-m", "fast", "-w", "-s", "stop"])
        logger.info("stopped embedded PostgreSQL")
    }

    /// Makes this (not yet created) cluster a streaming hot standby of `primary`: `pg_basebackup -R`
    /// over the primary's socket (its pg_hba trusts local replication), then this folder's own socket
    /// and port. Start it with `start()`; `pg_is_in_recovery()` is true on it until it is promoted.
    public func makeStandby(of primary: EmbeddedPostgres) throws {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) else {
            throw PQError.client("\(clusterDirectory.path) already holds a cluster")
        }
        try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        try handToServerUser(dataDirectory)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDirectory.path)
        let source = "host=\(primary.socketDirectory.path) port=\(primary.port) user=\(primary.superuser) application_name=\(dataDirectory.lastPathComponent)"
        try runAsServerUser(try binary("pg_basebackup"), ["-d", source, "-D", clusterDirectory.path, "-X", "stream", "-c", "fast", "-R"], quiet: true)
        // The copy carries the primary's postgresql.conf; the auto.conf lines after it win.
        let handle = try FileHandle(forWritingTo: clusterDirectory.appendingPathComponent("postgresql.auto.conf"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("""

            unix_socket_directories = '\(socketDirectory.path)'
            port = \(port)
            hot_standby = on

            """.utf8))
        try handle.close()
    }

    public func isRunning() throws -> Bool {
        guard FileManager.default.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) else { return false }
        return (try? runAsServerUser(try binary("pg_ctl"), ["-D", clusterDirectory.path, "status"], quiet: true)) != nil
    }

    public func createDatabaseIfNeeded(_ name: String) throws {
        let connection = try PQConnection(parameters: connectionParameters(database: "postgres"))
        if try connection.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]).first == nil {
            // Identifiers cannot be parameters; the name is ours (letters, digits, underscore) and quoted.
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw PQError.client("bad database name \(name)")
            }
            do {
                try connection.execute("CREATE DATABASE \"\(name)\" ENCODING 'UTF8' TEMPLATE template0")
            } catch let error as PQError where error.sqlState == "42P04" {
                // created meanwhile by another process
            }
        }
    }

    public func dropDatabase(_ name: String) throws {
        let connection = try PQConnection(parameters: connectionParameters(database: "postgres"))
        try connection.execute("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)")
    }

    private func initializeIfNeeded() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: clusterDirectory.appendingPathComponent("PG_VERSION").path) { return }
        try fm.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        try fm.createDirectory(at: clusterDirectory, withIntermediateDirectories: true)
        try handToServerUser(dataDirectory)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDirectory.path)
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: clusterDirectory.path)
        logger.info("initialising embedded PostgreSQL cluster", metadata: ["data": "\(clusterDirectory.path)"])
        try runAsServerUser(try binary("initdb"), ["-D", clusterDirectory.path, "-U", superuser, "--auth=trust",
                                                  "--encoding=UTF8", "--locale=C.UTF-8", "-N"], quiet: true)
        // Only the Unix socket in our own folder: nothing listens on the network.
        var settings = """

            # Stockpile embedded cluster
            listen_addresses = ''
            unix_socket_directories = '\(socketDirectory.path)'
            # trust authentication is safe only because nobody else can reach the socket.
            unix_socket_permissions = 0700
            port = \(port)
            max_connections = 200
            shared_buffers = \(Self.sharedBuffersMegabytes)MB
            log_min_messages = warning
            """
        if unsafeFastSettings {
            settings += "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        }
        let conf = clusterDirectory.appendingPathComponent("postgresql.conf")
        let handle = try FileHandle(forWritingTo: conf)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(settings.utf8))
        try handle.close()
    }

    /// A quarter of the machine's memory, from 256 MB to 4 GB (PostgreSQL's own rule of thumb). At
    /// 10,000 facilities × 300 items the cover snapshot and its indexes are 1.5 GB: with 256 MB each
    /// refresh read its index pages from the kernel's cache, and the worst 100 after 100 movements
    /// took p95 179 ms; with 4 GB, 133 ms (issue 18). Written once, at initdb: the operator's to change.
    static var sharedBuffersMegabytes: UInt64 {
        min(4096, max(256, ProcessInfo.processInfo.physicalMemory / 4 / 1_048_576))
    }

    private func prepareSocketDirectory() throws {
        try FileManager.default.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
        try handToServerUser(socketDirectory)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: socketDirectory.path)
    }

    // MARK: Running the server binaries

    /// PostgreSQL refuses to run as root; as root we run it as the `postgres` system user.
    static var isRoot: Bool { geteuid() == 0 }

    private func handToServerUser(_ url: URL) throws {
        guard Self.isRoot else { return }
        try run("/bin/chown", ["-R", "postgres:postgres", url.path], quiet: true)
    }

    @discardableResult
    private func runAsServerUser(_ executable: String, _ arguments: [String], quiet: Bool = false) throws -> String {
        if Self.isRoot {
            return try run("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments, quiet: quiet)
        }
        return try run(executable, arguments, quiet: quiet)
    }

    /// Finds a server binary: Debian keeps them in /usr/lib/postgresql/<major>/bin, off the PATH.
    public static func findBinary(_ name: String) -> String? {
        let fm = FileManager.default
        let versions = ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions {
            let path = "/usr/lib/postgresql/\(version)/bin/\(name)"
            if fm.isExecutableFile(atPath: path) { return path }
        }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if fm.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    private func binary(_ name: String) throws -> String {
        guard let path = Self.findBinary(name) else {
            throw PQError.client("\(name) not found: install PostgreSQL (apt-get install -y postgresql)")
        }
        return path
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String], quiet: Bool) throws -> String {
        try Subprocess.run(executable, arguments)
    }
}
