fn main() -> std::process::ExitCode {
    wabridge::cli::main()
}
