//! The `hsd` binary; its commands live in the library (`hsd_cli`).

fn main() -> std::process::ExitCode {
    hsd_cli::main()
}
