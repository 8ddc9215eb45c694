// `sqlx::migrate!` embeds the migrations at compile time, but cargo does not see them as inputs:
// without this, a new migration file alone would not rebuild the crate that carries it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
