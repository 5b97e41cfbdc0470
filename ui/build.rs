//! Builds the web app (`ui/web`, Vite) into `$OUT_DIR/web`, which `src/web.rs` embeds: `npm ci` when the
//! lock changed, then `npm run build`. Without npm, a one-page placeholder that says how to get the app is
//! embedded instead (and a cargo warning is printed), so Rust-only work still builds; so it is with
//! `SIGHTLINE_SKIP_WEB_BUILD=1`. A failing web build fails the Rust build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let web =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("web");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web");
    for input in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed=web/{input}");
    }
    println!("cargo:rerun-if-env-changed=SIGHTLINE_SKIP_WEB_BUILD");
    std::fs::create_dir_all(&out).expect("cannot create the web output directory");
    if std::env::var_os("SIGHTLINE_SKIP_WEB_BUILD").is_some_and(|v| v == "1") {
        placeholder(&out, "it was skipped (SIGHTLINE_SKIP_WEB_BUILD=1)");
        return;
    }
    if !web.join("package.json").exists() {
        placeholder(&out, "ui/web is missing from this checkout");
        return;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        println!("cargo:warning=npm not found: the web UI is a placeholder; install Node.js 20 and rebuild");
        placeholder(
            &out,
            "npm was not found when Sightline was compiled; install Node.js 20 and rebuild",
        );
        return;
    }
    if needs_install(&web) {
        run(&web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
    let out_arg = out.to_str().expect("the output directory is UTF-8");
    run(
        &web,
        &["run", "build", "--", "--outDir", out_arg, "--emptyOutDir"],
    );
}

/// Whether `node_modules` is missing or older than the lock file.
fn needs_install(web: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(&web.join("node_modules/.package-lock.json")),
        modified(&web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

fn run(dir: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run npm {}: {e}", args.join(" ")));
    assert!(
        status.success(),
        "npm {} failed in {} ({status})",
        args.join(" "),
        dir.display()
    );
}

fn placeholder(out: &Path, why: &str) {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).expect("cannot create the web output directory");
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sightline</title></head>\n\
         <body><h1>Sightline</h1><p>The web app was not built: {why}.</p><p>The API is up: see README.md.</p></body></html>\n"
    );
    std::fs::write(out.join("index.html"), html).expect("cannot write the placeholder page");
}
