//! `voicehost`: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    voicehost::cli::main(voicehost::cli::Cli::parse())
}
