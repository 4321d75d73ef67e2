//! The whoclosed binary: everything lives in the library; exit codes are decided in `cli::main_with`.

/// jemalloc, configured in .cargo/config.toml (why: docs/performance.md, "The allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(whoclosed::cli::main_with(std::env::args_os()));
}
