fn main() {
    println!("watermeter {}", env!("CARGO_PKG_VERSION"));
}
