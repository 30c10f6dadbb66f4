//! Joins each language's translation files (`locales/<lang>/*.toml`, one per feature) into one
//! file the binary embeds, so features keep their own strings.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_owned());
    for lang in ["de", "en"] {
        let dir = Path::new("locales").join(lang);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect())
            .unwrap_or_default();
        files.sort();
        let mut joined = String::new();
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            joined.push_str(&format!("# --- {}\n", f.display()));
            joined.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
            joined.push('\n');
        }
        let _ = std::fs::write(Path::new(&out).join(format!("locales_{lang}.toml")), joined);
    }
}
