//! The `lift` binary. Everything lives in the `lift_cli` library so that
//! `xtask codegen` can render the CLI reference from the same definition.

fn main() -> std::process::ExitCode {
    lift_cli::main()
}
