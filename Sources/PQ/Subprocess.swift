import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program to completion with posix_spawn and waitpid, capturing its output.
/// Foundation's Process waits through a run loop, which was seen to hang when every thread of
/// the cooperative pool was busy; this blocks only the calling thread.
public enum Subprocess {
    public struct Failure: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var output: String
        public var description: String { "\(command) failed (\(status)): \(output)" }
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw Failure(command: executable, status: -1, output: "pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        // The pipe's own descriptors must not outlive the spawn in the child: a server started by
        // pg_ctl would otherwise hold the write end open and we would never see end-of-file.
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        // Nor anything else of ours: a PostgreSQL that `serve` restarts (pg_ctl → postmaster) would
        // otherwise keep serve's listening socket and connections open for its whole life, and a
        // serve started after a crash could not bind its port.
        closeFrom(&actions, 3)
        // A child inherits the calling thread's blocked signals; event-loop threads block some, and a
        // pgbench started with SIGALRM blocked never ends its timed run. Start children clean.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let argv = [executable] + arguments
        let status: Int32 = CStringArray.with(argv) { argvPointer in
            CStringArray.with(environ().filter { entry in !environment.keys.contains { entry.hasPrefix($0 + "=") } }
                              + environment.map { "\($0)=\($1)" }) { envPointer in
                posix_spawn(&pid, executable, &actions, &attributes,
                            UnsafeMutablePointer(mutating: argvPointer).withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self, capacity: argv.count + 1) { $0 },
                            UnsafeMutablePointer(mutating: envPointer).withMemoryRebound(to: UnsafeMutablePointer<CChar>?.self, capacity: 1) { $0 })
            }
        }
        close(pipeFDs[1])
        guard status == 0 else {
            close(pipeFDs[0])
            throw Failure(command: executable, status: status, output: "could not start: \(String(cString: strerror(status)))")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, 4096) }
            if n > 0 { output.append(contentsOf: buffer[0..<n]) } else if n == 0 || errno != EINTR { break }
        }
        close(pipeFDs[0])
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) == -1 && errno == EINTR {}
        let text = String(decoding: output, as: UTF8.self)
        let exited = (waitStatus & 0x7f) == 0
        let code = exited ? (waitStatus >> 8) & 0xff : 128 + (waitStatus & 0x7f)
        guard code == 0 else {
            throw Failure(command: ([executable] + arguments).joined(separator: " "), status: code, output: text)
        }
        return text
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34+; not visible to Swift's Glibc module,
    /// so looked up by name), else a close action for each descriptor open now.
    static func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ lowest: Int32) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, lowest)
            return
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where fd >= lowest { posix_spawn_file_actions_addclose(&actions, fd) }
    }

    static func environ() -> [String] {
        var result: [String] = []
        var pointer = Glibc.environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }
}
