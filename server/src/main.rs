//! `bangfu-server`: the command line around the server library.

fn main() -> std::process::ExitCode {
    bangfu_server::cli::main()
}
