fn main() {
    ctl_core::runner::run_if_runner();
    eprintln!("error: ctl is not written yet");
    std::process::exit(1);
}
