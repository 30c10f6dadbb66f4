//! A message template as support writes it, validated as Meta validates it, turned into
//! Meta's JSON, and read back from stored components to be filled in and previewed.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wabridge_cloud_api::TemplateMessage;
use wabridge_cloud_api::client::message::{TemplateComponent, TemplateParameter};
use wabridge_cloud_api::client::NewTemplate;

/// Longest name Meta accepts.
pub const MAX_NAME: usize = 512;
/// Longest body text.
pub const MAX_BODY: usize = 1024;
/// Longest header text.
pub const MAX_HEADER: usize = 60;
/// Longest footer text.
pub const MAX_FOOTER: usize = 60;
/// Longest button label.
pub const MAX_BUTTON_TEXT: usize = 25;
/// Most buttons in a template.
pub const MAX_BUTTONS: usize = 10;
/// Longest parameter value (Meta allows more, but nobody needs it in a booking message).
pub const MAX_VALUE: usize = 1024;

/// The categories Meta prices and reviews.
pub const CATEGORIES: &[&str] = &["UTILITY", "MARKETING", "AUTHENTICATION"];

/// `{{customer_name}}` or `{{1}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParameterFormat {
    /// `{{customer_name}}`.
    Named,
    /// `{{1}}`, `{{2}}`, ….
    Positional,
}

impl ParameterFormat {
    /// Meta's name.
    pub fn as_meta(self) -> &'static str {
        match self {
            ParameterFormat::Named => "NAMED",
            ParameterFormat::Positional => "POSITIONAL",
        }
    }
}

/// A button of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Button {
    /// A quick reply the customer taps.
    QuickReply {
        /// Label.
        text: String,
    },
    /// Opens a web page.
    Url {
        /// Label.
        text: String,
        /// https URL.
        url: String,
    },
    /// Calls a number.
    Phone {
        /// Label.
        text: String,
        /// Phone number with country code.
        phone: String,
    },
}

impl Button {
    /// The label.
    pub fn text(&self) -> &str {
        match self {
            Button::QuickReply { text } | Button::Url { text, .. } | Button::Phone { text, .. } => text,
        }
    }
}

/// A template as support writes it.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    /// Lowercase letters, digits, underscores.
    pub name: String,
    /// `de`, `en`, `en_US` …
    pub language: String,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`.
    pub category: String,
    /// Optional text header.
    pub header: Option<String>,
    /// The body.
    pub body: String,
    /// Optional footer.
    pub footer: Option<String>,
    /// Up to ten buttons.
    pub buttons: Vec<Button>,
    /// Example values by parameter name (`customer_name` or `1`).
    pub examples: BTreeMap<String, String>,
}

/// The parameters found in a text, in order of first appearance.
pub fn parameters(text: &str) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("template_param_format")?;
        let name = after[..end].trim();
        let named = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
        let positional = !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) && !name.starts_with('0');
        if !(named || positional) || name != &after[..end] {
            return Err("template_param_format");
        }
        if !out.iter().any(|p| p == name) {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    if rest.contains("}}") && !text.contains("{{") {
        return Err("template_param_format");
    }
    Ok(out)
}

fn format_of(params: &[String]) -> Result<Option<ParameterFormat>, &'static str> {
    let positional = params.iter().filter(|p| p.chars().all(|c| c.is_ascii_digit())).count();
    match (positional, params.len()) {
        (_, 0) => Ok(None),
        (0, _) => Ok(Some(ParameterFormat::Named)),
        (p, n) if p == n => Ok(Some(ParameterFormat::Positional)),
        _ => Err("template_param_mixed"),
    }
}

/// A draft that passed validation, with what validation learned.
#[derive(Clone, Debug)]
pub struct Validated {
    /// The draft.
    pub draft: Draft,
    /// Format of its parameters, when it has any.
    pub format: Option<ParameterFormat>,
    /// Header parameters.
    pub header_params: Vec<String>,
    /// Body parameters.
    pub body_params: Vec<String>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Checks a draft the way Meta's review checks its form; every problem is reported.
pub fn validate(mut draft: Draft) -> Result<Validated, Vec<&'static str>> {
    let mut problems = Vec::new();
    draft.name = draft.name.trim().to_owned();
    draft.language = draft.language.trim().to_owned();
    draft.category = draft.category.trim().to_ascii_uppercase();
    draft.header = draft.header.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    draft.footer = draft.footer.map(|h| h.trim().to_owned()).filter(|h| !h.is_empty());
    draft.body = draft.body.trim().to_owned();
    if draft.name.is_empty() || chars(&draft.name) > MAX_NAME || !draft.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        problems.push("template_name");
    }
    let lang_ok = (2..=8).contains(&draft.language.len()) && draft.language.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
    if !lang_ok {
        problems.push("template_language");
    }
    if !CATEGORIES.contains(&draft.category.as_str()) {
        problems.push("template_category");
    }
    if draft.body.is_empty() || chars(&draft.body) > MAX_BODY {
        problems.push("template_body_length");
    }
    let body_params = parameters(&draft.body).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    // Meta refuses a body that starts or ends with a parameter.
    if draft.body.starts_with("{{") || draft.body.ends_with("}}") {
        problems.push("template_param_edge");
    }
    let mut header_params = Vec::new();
    if let Some(h) = &draft.header {
        if chars(h) > MAX_HEADER {
            problems.push("template_header_length");
        }
        header_params = parameters(h).unwrap_or_else(|e| {
            problems.push(e);
            Vec::new()
        });
        if header_params.len() > 1 {
            problems.push("template_header_params");
        }
    }
    if let Some(f) = &draft.footer {
        if chars(f) > MAX_FOOTER {
            problems.push("template_footer_length");
        }
        if f.contains("{{") {
            problems.push("template_footer_params");
        }
    }
    if draft.buttons.len() > MAX_BUTTONS {
        problems.push("template_buttons_count");
    }
    for b in &draft.buttons {
        let t = b.text().trim();
        if t.is_empty() || chars(t) > MAX_BUTTON_TEXT {
            problems.push("template_button_text");
        }
        match b {
            Button::Url { url, .. } if !url.starts_with("https://") || url.len() > 2000 => problems.push("template_button_url"),
            Button::Phone { phone, .. } if !(8..=20).contains(&phone.trim_start_matches('+').len()) || !phone.trim_start_matches('+').chars().all(|c| c.is_ascii_digit()) => {
                problems.push("template_button_phone");
            }
            _ => {}
        }
    }
    let all: Vec<String> = header_params.iter().chain(body_params.iter()).cloned().collect();
    let format = format_of(&all).unwrap_or_else(|e| {
        problems.push(e);
        None
    });
    if format == Some(ParameterFormat::Positional) {
        // {{1}}, {{2}} … in order, without gaps, per component.
        for list in [&header_params, &body_params] {
            let expected: Vec<String> = (1..=list.len()).map(|i| i.to_string()).collect();
            if *list != expected {
                problems.push("template_param_sequence");
            }
        }
    }
    for p in &all {
        if draft.examples.get(p).is_none_or(|e| e.trim().is_empty()) {
            problems.push("template_example_missing");
            break;
        }
    }
    problems.dedup();
    if problems.is_empty() { Ok(Validated { draft, format, header_params, body_params }) } else { Err(problems) }
}

impl Validated {
    fn examples(&self, params: &[String], named_key: &str, positional_key: &str, nested: bool) -> Value {
        let values: Vec<String> = params.iter().map(|p| self.draft.examples.get(p).cloned().unwrap_or_default()).collect();
        match self.format {
            Some(ParameterFormat::Named) => {
                json!({ named_key: params.iter().zip(&values).map(|(p, e)| json!({"param_name": p, "example": e})).collect::<Vec<_>>() })
            }
            _ if nested => json!({ positional_key: [values] }),
            _ => json!({ positional_key: values }),
        }
    }

    /// Meta's components JSON.
    pub fn components(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if let Some(h) = &self.draft.header {
            let mut c = json!({"type": "HEADER", "format": "TEXT", "text": h});
            if !self.header_params.is_empty() {
                c["example"] = self.examples(&self.header_params, "header_text_named_params", "header_text", false);
            }
            out.push(c);
        }
        let mut body = json!({"type": "BODY", "text": self.draft.body});
        if !self.body_params.is_empty() {
            body["example"] = self.examples(&self.body_params, "body_text_named_params", "body_text", true);
        }
        out.push(body);
        if let Some(f) = &self.draft.footer {
            out.push(json!({"type": "FOOTER", "text": f}));
        }
        if !self.draft.buttons.is_empty() {
            let buttons: Vec<Value> = self
                .draft
                .buttons
                .iter()
                .map(|b| match b {
                    Button::QuickReply { text } => json!({"type": "QUICK_REPLY", "text": text.trim()}),
                    Button::Url { text, url } => json!({"type": "URL", "text": text.trim(), "url": url}),
                    Button::Phone { text, phone } => json!({"type": "PHONE_NUMBER", "text": text.trim(), "phone_number": phone}),
                })
                .collect();
            out.push(json!({"type": "BUTTONS", "buttons": buttons}));
        }
        out
    }

    /// The request that submits it.
    pub fn to_meta(&self) -> NewTemplate {
        NewTemplate {
            name: self.draft.name.clone(),
            language: self.draft.language.clone(),
            category: self.draft.category.clone(),
            parameter_format: self.format.map(|f| f.as_meta().to_owned()),
            components: self.components(),
        }
    }
}

/// The default booking confirmation (DESIGN.md rule 9) in one language.
pub fn booking_confirmation(language: &str) -> Validated {
    let (body, cancel, reschedule) = match language {
        "en" => (
            "Hello {{customer_name}}, your appointment for {{service}} on {{date}} at {{time}} at {{business_name}} is confirmed.",
            "Cancel",
            "Reschedule",
        ),
        _ => (
            "Hallo {{customer_name}}, Ihr Termin für {{service}} am {{date}} um {{time}} bei {{business_name}} ist bestätigt.",
            "Absagen",
            "Verschieben",
        ),
    };
    let examples: BTreeMap<String, String> = [("customer_name", "Anna"), ("service", "Haarschnitt"), ("date", "12.03.2026"), ("time", "14:30"), ("business_name", "Salon Beispiel")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let draft = Draft {
        name: "booking_confirmation".to_owned(),
        language: language.to_owned(),
        category: "UTILITY".to_owned(),
        body: body.to_owned(),
        buttons: vec![Button::QuickReply { text: cancel.to_owned() }, Button::QuickReply { text: reschedule.to_owned() }],
        examples,
        ..Draft::default()
    };
    let body_params = parameters(&draft.body).unwrap_or_default();
    Validated { draft, format: Some(ParameterFormat::Named), header_params: Vec::new(), body_params }
}

/// A stored template's parts, read back from Meta's components JSON.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    /// Header text.
    pub header: Option<String>,
    /// Body text.
    pub body: String,
    /// Footer text.
    pub footer: Option<String>,
    /// Button labels.
    pub buttons: Vec<String>,
    /// Header parameters.
    pub header_params: Vec<String>,
    /// Body parameters.
    pub body_params: Vec<String>,
    /// Examples by parameter.
    pub examples: BTreeMap<String, String>,
}

impl Parts {
    /// Reads Meta's components.
    pub fn from_components(components: &Value) -> Parts {
        let mut parts = Parts::default();
        for c in components.as_array().into_iter().flatten() {
            let text = c["text"].as_str().map(str::to_owned);
            match c["type"].as_str().map(str::to_ascii_uppercase).as_deref() {
                Some("HEADER") if c["format"].as_str().is_none_or(|f| f.eq_ignore_ascii_case("TEXT")) => {
                    parts.header_params = text.as_deref().and_then(|t| parameters(t).ok()).unwrap_or_default();
                    parts.header = text;
                    collect_examples(&c["example"], &parts.header_params, &mut parts.examples);
                }
                Some("BODY") => {
                    parts.body_params = text.as_deref().and_then(|t| parameters(t).ok()).unwrap_or_default();
                    parts.body = text.unwrap_or_default();
                    collect_examples(&c["example"], &parts.body_params, &mut parts.examples);
                }
                Some("FOOTER") => parts.footer = text,
                Some("BUTTONS") => {
                    parts.buttons = c["buttons"].as_array().into_iter().flatten().filter_map(|b| b["text"].as_str().map(str::to_owned)).collect();
                }
                _ => {}
            }
        }
        parts
    }

    /// Every parameter, header first.
    pub fn params(&self) -> Vec<String> {
        let mut all = self.header_params.clone();
        all.extend(self.body_params.iter().filter(|p| !self.header_params.contains(p)).cloned());
        all
    }

    /// The text with values filled in (missing ones stay as `{{name}}`).
    pub fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
        let mut out = text.to_owned();
        for (k, v) in values.iter().filter(|(_, v)| !v.trim().is_empty()) {
            out = out.replace(&format!("{{{{{k}}}}}"), v.trim());
        }
        out
    }

    /// The message Meta takes, with the values in the template's format; `Err` names the
    /// first missing or overlong value.
    pub fn message(&self, name: &str, language: &str, values: &BTreeMap<String, String>) -> Result<TemplateMessage, &'static str> {
        let mut msg = TemplateMessage::new(name, language);
        let positional = self.params().iter().all(|p| p.chars().all(|c| c.is_ascii_digit()));
        let value = |p: &String| -> Result<String, &'static str> {
            let v = values.get(p).map(|v| v.trim().to_owned()).unwrap_or_default();
            if v.is_empty() {
                Err("template_value_missing")
            } else if v.chars().count() > MAX_VALUE || v.contains("\n\n\n\n\n") {
                Err("template_value_too_long")
            } else {
                Ok(v)
            }
        };
        let params = |list: &[String]| -> Result<Vec<TemplateParameter>, &'static str> {
            list.iter().map(|p| Ok(if positional { TemplateParameter::text(value(p)?) } else { TemplateParameter::named_text(p, value(p)?) })).collect()
        };
        if !self.header_params.is_empty() {
            msg = msg.with_component(TemplateComponent::header(params(&self.header_params)?));
        }
        if !self.body_params.is_empty() {
            msg = msg.with_component(TemplateComponent::body(params(&self.body_params)?));
        }
        Ok(msg)
    }
}

fn collect_examples(example: &Value, params: &[String], out: &mut BTreeMap<String, String>) {
    for key in ["body_text_named_params", "header_text_named_params"] {
        for e in example[key].as_array().into_iter().flatten() {
            if let (Some(p), Some(v)) = (e["param_name"].as_str(), e["example"].as_str()) {
                out.insert(p.to_owned(), v.to_owned());
            }
        }
    }
    let positional: Vec<&Value> = match (&example["body_text"], &example["header_text"]) {
        (Value::Array(rows), _) if rows.first().is_some_and(Value::is_array) => rows[0].as_array().map(|r| r.iter().collect()).unwrap_or_default(),
        (_, Value::Array(values)) => values.iter().collect(),
        _ => Vec::new(),
    };
    for (p, v) in params.iter().zip(positional) {
        if let Some(v) = v.as_str() {
            out.entry(p.clone()).or_insert_with(|| v.to_owned());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn draft(body: &str) -> Draft {
        Draft { name: "booking_note".into(), language: "de".into(), category: "UTILITY".into(), body: body.into(), ..Draft::default() }
    }

    fn with_examples(mut d: Draft, ex: &[(&str, &str)]) -> Draft {
        d.examples = ex.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        d
    }

    #[test]
    fn the_default_template_passes_and_has_named_examples() {
        let v = booking_confirmation("de");
        let again = validate(v.draft.clone()).unwrap();
        assert_eq!(again.format, Some(ParameterFormat::Named));
        assert_eq!(again.body_params, ["customer_name", "service", "date", "time", "business_name"]);
        let meta = again.to_meta();
        assert_eq!(meta.parameter_format.as_deref(), Some("NAMED"));
        assert_eq!(meta.components[0]["example"]["body_text_named_params"][0]["param_name"], "customer_name");
        assert_eq!(meta.components[1]["buttons"][0]["type"], "QUICK_REPLY");
        let parts = Parts::from_components(&Value::Array(meta.components));
        assert_eq!(parts.examples["service"], "Haarschnitt");
        assert_eq!(parts.buttons, ["Absagen", "Verschieben"]);
    }

    #[test]
    fn meta_rules_are_enforced() {
        assert!(validate(with_examples(draft("Hallo {{1}}, bis {{2}}."), &[("1", "Anna"), ("2", "Montag")])).is_ok());
        let e = |d: Draft| validate(d).unwrap_err();
        assert!(e(Draft { name: "Booking Note".into(), ..draft("Hallo") }).contains(&"template_name"));
        assert!(e(Draft { name: "x".repeat(513), ..draft("Hallo") }).contains(&"template_name"));
        assert!(e(draft(&"a".repeat(1025))).contains(&"template_body_length"));
        assert!(e(draft("Hallo {{Name}}, hi")).contains(&"template_param_format"));
        assert!(e(draft("Hallo {{name, hi")).contains(&"template_param_format"));
        assert!(e(with_examples(draft("Hallo {{1}} und {{name}} ok"), &[("1", "a"), ("name", "b")])).contains(&"template_param_mixed"));
        assert!(e(with_examples(draft("Hallo {{2}} ok"), &[("2", "a")])).contains(&"template_param_sequence"));
        assert!(e(draft("Hallo {{customer_name}} ok")).contains(&"template_example_missing"));
        assert!(e(with_examples(draft("{{customer_name}} ok"), &[("customer_name", "a")])).contains(&"template_param_edge"));
        assert!(e(Draft { header: Some("h".repeat(61)), ..draft("Hallo") }).contains(&"template_header_length"));
        assert!(e(Draft { footer: Some("f".repeat(61)), ..draft("Hallo") }).contains(&"template_footer_length"));
        assert!(e(Draft { category: "PROMO".into(), ..draft("Hallo") }).contains(&"template_category"));
        let many = (0..11).map(|i| Button::QuickReply { text: format!("b{i}") }).collect();
        assert!(e(Draft { buttons: many, ..draft("Hallo") }).contains(&"template_buttons_count"));
        assert!(e(Draft { buttons: vec![Button::QuickReply { text: "x".repeat(26) }], ..draft("Hallo") }).contains(&"template_button_text"));
        assert!(e(Draft { buttons: vec![Button::Url { text: "Web".into(), url: "http://x".into() }], ..draft("Hallo") }).contains(&"template_button_url"));
    }

    #[test]
    fn filling_and_the_message_follow_the_format() {
        let parts = Parts::from_components(&Value::Array(booking_confirmation("de").components()));
        let mut values = BTreeMap::new();
        values.insert("customer_name".to_owned(), "Anna".to_owned());
        assert!(Parts::fill(&parts.body, &values).starts_with("Hallo Anna, Ihr Termin für {{service}}"));
        assert_eq!(parts.message("booking_confirmation", "de", &values).unwrap_err(), "template_value_missing");
        for p in ["service", "date", "time", "business_name"] {
            values.insert(p.to_owned(), "x".to_owned());
        }
        let m = parts.message("booking_confirmation", "de", &values).unwrap();
        assert_eq!(m.components[0].parameters[0].parameter_name.as_deref(), Some("customer_name"));
    }
}
