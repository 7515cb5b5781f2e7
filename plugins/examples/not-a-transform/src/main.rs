//! A component that lacks the `transform` world's exports (it is a plain WASI command), for
//! the test that the host refuses it at connector start with a clear error.

fn main() {
    println!("not a transform");
}
