//! The whoclosed binary: everything lives in the library; exit codes are decided in `cli::main_with`.
fn main() {
    std::process::exit(whoclosed::cli::main_with(std::env::args_os()));
}
