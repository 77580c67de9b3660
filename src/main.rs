//! `kite`: the local server and command-line interface.
fn main() {
    println!("kite {}", env!("CARGO_PKG_VERSION"));
}
