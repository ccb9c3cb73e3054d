//! `secgroupctl`: see the library for everything.

fn main() -> std::process::ExitCode {
    secgroupctl::main()
}
