//! The default booking-confirmation template (DESIGN.md rule 9), submitted for every tenant
//! during onboarding. The templates feature builds on this definition (and keeps its own table
//! of every template); onboarding only records the review of this one for its checklist.

use wabridge_cloud_api::client::NewTemplate;

/// The template's name at Meta.
pub const DEFAULT_TEMPLATE: &str = "booking_confirmation";

/// Its languages.
pub const LANGUAGES: [&str; 2] = ["de", "en"];

/// Named parameters, in body order, with the examples Meta's review sees.
pub const PARAMETERS: [(&str, &str); 5] = [
    ("customer_name", "Anna"),
    ("service", "Haarschnitt"),
    ("date", "12.03.2026"),
    ("time", "14:30"),
    ("business_name", "Salon Beispiel"),
];

/// The template in one language (`de` or `en`): utility, named parameters, quick replies to
/// cancel or reschedule.
pub fn booking_confirmation(language: &str) -> NewTemplate {
    let (body, replies): (&str, [&str; 2]) = if language == "de" {
        (
            "Hallo {{customer_name}}, Ihr Termin für {{service}} am {{date}} um {{time}} bei {{business_name}} ist bestätigt.",
            ["Absagen", "Verschieben"],
        )
    } else {
        (
            "Hello {{customer_name}}, your appointment for {{service}} on {{date}} at {{time}} with {{business_name}} is confirmed.",
            ["Cancel", "Reschedule"],
        )
    };
    NewTemplate::utility_named(DEFAULT_TEMPLATE, language, body, &PARAMETERS, &replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_are_utility_with_named_parameters_and_two_quick_replies() {
        for lang in LANGUAGES {
            let t = booking_confirmation(lang);
            assert_eq!(t.name, "booking_confirmation");
            assert_eq!(t.category, "UTILITY");
            assert_eq!(t.parameter_format.as_deref(), Some("NAMED"));
            let body = t.components[0]["text"].as_str().unwrap();
            for (p, _) in PARAMETERS {
                assert!(body.contains(&format!("{{{{{p}}}}}")), "{lang}: {p}");
            }
            assert_eq!(t.components[1]["buttons"].as_array().unwrap().len(), 2);
        }
    }
}
