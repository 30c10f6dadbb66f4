//! UI strings in German (default) and English, from `locales/<lang>/<feature>.toml`, compiled in.
//!
//! The language is passed explicitly with every lookup (never a process-wide "current
//! locale"), because concurrent requests speak different languages.

use std::collections::HashMap;
use std::sync::LazyLock;

/// A UI language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    /// German, the default.
    #[default]
    De,
    /// English.
    En,
}

impl Lang {
    /// Every supported language, default first.
    pub const ALL: [Lang; 2] = [Lang::De, Lang::En];

    /// The language's code (`de`, `en`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    /// Parses a language code; `de-AT` counts as `de`.
    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "de" => Some(Lang::De),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best supported language in an `Accept-Language` header, by quality.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::parse(tag)
                && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
        }
        best.map(|(_, l)| l)
    }

    /// The UI string for `key`; the key itself when missing (a test keeps that from happening).
    pub fn t(self, key: &str) -> &'static str {
        self.lookup(key).unwrap_or_else(|| {
            tracing::warn!(key, lang = self.code(), "missing translation");
            // Leaked once per missing key at most in practice; keeps the signature simple.
            Box::leak(key.to_owned().into_boxed_str())
        })
    }

    /// The UI word for `prefix.key`, or `key` as it is when there is none (a value from
    /// outside, such as a status Meta or an older version wrote).
    pub fn word<'a>(self, prefix: &str, key: &'a str) -> &'a str {
        self.lookup(&format!("{prefix}.{key}")).unwrap_or(key)
    }

    /// The UI string for `key`, when there is one (for words looked up from outside data, such
    /// as Meta's status values, that may have none).
    pub fn lookup(self, key: &str) -> Option<&'static str> {
        let table = match self {
            Lang::De => &CATALOG.de,
            Lang::En => &CATALOG.en,
        };
        table.get(key).map(String::as_str)
    }

    /// The UI string for `key` with `{name}` replaced by `value`.
    pub fn tf(self, key: &str, name: &str, value: &str) -> String {
        self.t(key).replace(&format!("{{{name}}}"), value)
    }
}

/// Both languages' strings.
pub struct Catalog {
    /// German strings.
    pub de: HashMap<String, String>,
    /// English strings.
    pub en: HashMap<String, String>,
}

/// The German strings: every `locales/de/*.toml`, joined by the build script.
pub const DE_SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/locales_de.toml"));
/// The English strings: every `locales/en/*.toml`, joined by the build script.
pub const EN_SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/locales_en.toml"));

/// Parses one translation file into key → text.
pub fn parse_catalog(source: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = source.parse().map_err(|e| format!("{e}"))?;
    table
        .into_iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k, s)),
            other => Err(format!("{k} is not a string: {other:?}")),
        })
        .collect()
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    de: parse_catalog(DE_SOURCE).unwrap_or_default(),
    en: parse_catalog(EN_SOURCE).unwrap_or_default(),
});

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn both_languages_have_the_same_keys() {
        let de = parse_catalog(DE_SOURCE).unwrap();
        let en = parse_catalog(EN_SOURCE).unwrap();
        let de_keys: BTreeSet<_> = de.keys().collect();
        let en_keys: BTreeSet<_> = en.keys().collect();
        assert_eq!(de_keys.difference(&en_keys).collect::<Vec<_>>(), Vec::<&&String>::new(), "only in de");
        assert_eq!(en_keys.difference(&de_keys).collect::<Vec<_>>(), Vec::<&&String>::new(), "only in en");
        assert!(de.len() > 50);
        assert!(de.values().chain(en.values()).all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn every_key_used_in_templates_and_code_exists() {
        let de = parse_catalog(DE_SOURCE).unwrap();
        let mut missing = Vec::new();
        let root = concat!(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["templates", "src", "static"] {
            collect(&std::path::Path::new(root).join(dir), &mut files);
        }
        let mut used = 0;
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            for (i, _) in text.match_indices("t(\"") {
                let rest = &text[i + 3..];
                let Some(end) = rest.find('"') else { continue };
                let key = &rest[..end];
                if key.contains('.') && !key.contains(' ') && !key.contains('{') {
                    used += 1;
                    if !de.contains_key(key) {
                        missing.push(format!("{}: {key}", file.display()));
                    }
                }
            }
        }
        assert!(used > 30, "found only {used} lookups");
        assert!(missing.is_empty(), "missing keys: {missing:#?}");
    }

    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,de;q=0.8"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr-FR, de;q=0.5, en;q=0.4"), Some(Lang::De));
        assert_eq!(Lang::from_accept_language("fr"), None);
        assert_eq!(Lang::De.tf("support.tenant_title", "name", "X"), "Kunde: X");
    }
}
