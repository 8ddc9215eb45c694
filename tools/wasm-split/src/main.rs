//! `wasm-split INPUT.wasm PKG_DIR OUTPUT_NAME MAIN_OUT.wasm`
//!
//! The bundle's lazy routes (`#[lazy_route]`) are split points; this cuts the linked module
//! (built with `--emit-relocs`) into the main module, written to MAIN_OUT for wasm-bindgen, and
//! one `.wasm` per split into PKG_DIR, with the JS loader and the manifest under the names
//! Leptos's `HydrationScripts` looks for (so the server preloads the chunk of the page it
//! renders). It is what `cargo leptos build --split` does after cargo; this project builds with
//! its own script (docs/BENCHMARKS.md says why), so the step is this small program around the
//! same library.
use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context, Result};

/// Leptos (`hydration/mod.rs`) expects these names when file hashing is off.
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg_dir, output_name, main_out] = args.as_slice() else {
        bail!("usage: wasm-split INPUT.wasm PKG_DIR OUTPUT_NAME MAIN_OUT.wasm");
    };
    let input_wasm = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let pkg_dir = PathBuf::from(pkg_dir);
    let main_out = PathBuf::from(main_out);
    let main_module = format!("./{output_name}.js");
    let link_name = format!("./{LOADER}");
    let split = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&input_wasm);
        opts.output_dir = &pkg_dir;
        opts.main_out_path = &main_out;
        opts.main_module = &main_module;
        opts.link_name = &link_name;
        opts
    })
    .map_err(|e| anyhow::anyhow!("{e:?}"))
    .context("splitting the bundle")?;
    // Sorted, so the same build writes the same bytes.
    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    std::fs::write(
        pkg_dir.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?,
    )
    .context("writing the split manifest")?;
    for module in &split.split_modules {
        println!("{}", module.display());
    }
    Ok(())
}
