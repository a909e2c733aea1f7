//! The browser client in `../web/` is embedded at compile time; rebuild when any file there changes
//! (including files added or removed, which `include_bytes!` alone would miss).
fn main() {
    println!("cargo:rerun-if-changed=../web");
}
