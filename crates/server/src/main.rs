//! The `wabridge` binary.

/// mimalloc rather than the system allocator: the webhook road allocates many small, short-
/// lived buffers on several threads, where glibc's allocator cost ~15 % of the CPU (see the
/// README's benchmarks; the benchmark uses the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wabridge::cli::main()
}
