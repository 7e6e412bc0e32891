//! The `trialpipe` binary: parse arguments, call the library, map the result to an exit code.

use clap::Parser;

fn main() {
    let args = trialpipe::cli::Cli::parse();
    let code = match trialpipe::cli::execute(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("trialpipe: error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
