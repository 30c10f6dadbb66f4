//! The rate card: what Meta charges per delivered message, by market, category and date.
//!
//! Meta changes prices and rules only on fixed dates, so both are data: one CSV row per
//! (market, category, whether the customer service window is open, effective date). The
//! format is the documented sample's (`rates/default.csv`, built in; `WABRIDGE_RATE_CARD`
//! replaces it):
//!
//! `market,country_codes,calling_codes,currency,category,applies,rate,effective_from,source`
//!
//! - `market` names the market; `*` in all three market columns marks a rule for every market
//!   (used only where the market has no row of its own).
//! - `country_codes` ISO 3166 codes and `calling_codes` country calling codes, several
//!   separated by `;` or spaces.
//! - `applies`: `any`, `inside_window` or `outside_window`.
//! - `rate`: amount per message in `currency`; empty means "nobody knows" — never zero.
//! - `effective_from`: `YYYY-MM-DD`; the newest row not after the day wins, a row for the
//!   exact window state beats `any` on the same day.

use time::Date;

/// A market with its own rates (Germany, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Market {
    /// Its name in the card.
    pub name: String,
}

/// What one message costs, as far as anybody knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rate {
    /// A known amount in millionths of the currency (0 = free).
    Known {
        /// Millionths of the currency.
        micros: i64,
        /// ISO currency.
        currency: String,
        /// Where the figure comes from.
        source: String,
    },
    /// No rate is known for this market and category.
    Unknown,
}

impl Rate {
    /// The amount in millionths, when known.
    pub fn micros(&self) -> Option<i64> {
        match self {
            Rate::Known { micros, .. } => Some(*micros),
            Rate::Unknown => None,
        }
    }
}

/// Whether a row holds inside, outside or regardless of the customer service window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Applies {
    Any,
    Inside,
    Outside,
}

#[derive(Clone, Debug)]
struct Row {
    market: Option<String>,
    countries: Vec<String>,
    calling_codes: Vec<String>,
    currency: String,
    category: String,
    applies: Applies,
    micros: Option<i64>,
    from: Date,
    source: String,
}

/// The dated rate card.
#[derive(Clone, Debug)]
pub struct RateCard {
    rows: Vec<Row>,
}

/// The built-in card (the documented sample).
pub const DEFAULT_CSV: &str = include_str!("../../rates/default.csv");

/// The category's fallback rate where no market rate is known: the product documentation's
/// "about 0.0017 EUR" for utility templates (also a row of the default card).
pub const UTILITY_FALLBACK_MICROS: i64 = 1_700;

/// Why a rate card does not load.
#[derive(Debug, thiserror::Error)]
#[error("rate card line {line}: {problem}")]
pub struct RateCardError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// Splits one CSV line (double quotes, `""` inside quotes).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

/// Parses a decimal amount into millionths without floating point.
pub fn parse_micros(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 6 || !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: i64 = format!("{frac:0<6}").parse().ok()?;
    whole.checked_mul(1_000_000)?.checked_add(frac)
}

/// Formats millionths as a decimal with at least two and at most six places (`0.0456`).
pub fn format_micros(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.abs();
    let mut frac = format!("{:06}", m % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}{}.{frac}", m / 1_000_000)
}

fn list(s: &str) -> Vec<String> {
    s.split([';', ' ', '|']).map(|x| x.trim().trim_start_matches('+').to_ascii_uppercase()).filter(|x| !x.is_empty() && x != "*").collect()
}

impl RateCard {
    /// Parses a card in the documented format.
    pub fn parse(csv: &str) -> Result<RateCard, RateCardError> {
        let mut rows = Vec::new();
        let mut lines = csv.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let Some((_, header)) = lines.next() else { return Err(RateCardError { line: 1, problem: "empty".to_owned() }) };
        let header: Vec<String> = split_csv(header).into_iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let names = ["market", "country_codes", "calling_codes", "currency", "category", "applies", "rate", "effective_from"];
        let mut idx = [0usize; 8];
        for (i, n) in names.iter().enumerate() {
            idx[i] = col(n).ok_or_else(|| RateCardError { line: 1, problem: format!("column {n} missing") })?;
        }
        let source_col = col("source");
        for (n, line) in lines {
            let f = split_csv(line);
            let get = |i: usize| f.get(idx[i]).map(|s| s.trim().to_owned()).unwrap_or_default();
            let err = |problem: String| RateCardError { line: n + 1, problem };
            let market = get(0);
            let applies = match get(5).as_str() {
                "any" | "" => Applies::Any,
                "inside_window" => Applies::Inside,
                "outside_window" => Applies::Outside,
                other => return Err(err(format!("applies must be any, inside_window or outside_window, not {other:?}"))),
            };
            let rate = get(6);
            let micros = if rate.is_empty() { None } else { Some(parse_micros(&rate).ok_or_else(|| err(format!("rate {rate:?} is not a decimal")))?) };
            let from = Date::parse(&get(7), time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| err(format!("effective_from {:?} is not YYYY-MM-DD", get(7))))?;
            let category = get(4).to_ascii_lowercase();
            if category.is_empty() {
                return Err(err("category missing".to_owned()));
            }
            rows.push(Row {
                market: Some(market).filter(|m| !m.is_empty() && m != "*"),
                countries: list(&get(1)),
                calling_codes: list(&get(2)),
                currency: Some(get(3)).filter(|c| !c.is_empty()).unwrap_or_else(|| "EUR".to_owned()),
                category,
                applies,
                micros,
                from,
                source: source_col.and_then(|i| f.get(i)).map(|s| s.trim().to_owned()).unwrap_or_default(),
            });
        }
        Ok(RateCard { rows })
    }

    /// The built-in card.
    pub fn builtin() -> RateCard {
        // The default is part of the binary and covered by a test.
        RateCard::parse(DEFAULT_CSV).unwrap_or(RateCard { rows: Vec::new() })
    }

    /// The market of a customer: by the calling code of the phone number (longest match), or
    /// by the ISO country a BSUID carries as its `CC.` prefix.
    pub fn market_for(&self, phone: Option<&str>, bsuid: Option<&str>) -> Option<Market> {
        if let Some(phone) = phone {
            let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
            let best = self
                .rows
                .iter()
                .filter_map(|r| Some((r.market.as_ref()?, r.calling_codes.iter().filter(|c| digits.starts_with(c.as_str())).map(String::len).max()?)))
                .max_by_key(|(_, len)| *len);
            if let Some((name, _)) = best {
                return Some(Market { name: name.clone() });
            }
        }
        let country = bsuid?.split_once('.')?.0.to_ascii_uppercase();
        self.rows.iter().find(|r| r.countries.contains(&country)).and_then(|r| r.market.clone()).map(|name| Market { name })
    }

    /// The rate of one message of `category` to `market` on `day`, inside or outside the window.
    pub fn rate(&self, market: Option<&Market>, category: &str, inside_window: bool, day: Date) -> Rate {
        let category = category.to_ascii_lowercase();
        let wanted = if inside_window { Applies::Inside } else { Applies::Outside };
        let pick = |for_market: Option<&str>| -> Option<&Row> {
            self.rows
                .iter()
                .filter(|r| r.market.as_deref() == for_market && r.category == category && r.from <= day && (r.applies == Applies::Any || r.applies == wanted))
                .max_by_key(|r| (r.from, r.applies != Applies::Any))
        };
        let row = market.and_then(|m| pick(Some(&m.name))).or_else(|| pick(None));
        match row {
            Some(Row { micros: Some(micros), currency, source, .. }) => Rate::Known { micros: *micros, currency: currency.clone(), source: source.clone() },
            _ => Rate::Unknown,
        }
    }
}

/// The UTC day of a Unix-ms time.
pub fn day_of(ms: i64) -> Date {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).map(|t| t.date()).unwrap_or(Date::MIN)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::date;

    fn de() -> Option<Market> {
        Some(Market { name: "Germany".to_owned() })
    }

    #[test]
    fn the_builtin_card_loads_and_prices_by_the_rules() {
        let card = RateCard::parse(DEFAULT_CSV).unwrap();
        assert_eq!(card.market_for(Some("+49 170 1234567"), None), de());
        assert_eq!(card.market_for(None, Some("DE.1234567890")), de());
        assert_eq!(card.market_for(Some("15551234567"), Some("US.1")), None);
        // Germany, outside the window: the market's utility rate.
        assert_eq!(card.rate(de().as_ref(), "utility", false, date!(2026 - 03 - 01)).micros(), Some(45_600));
        // Inside the window: free before 2026-10-01, charged from then on.
        assert_eq!(card.rate(de().as_ref(), "utility", true, date!(2026 - 09 - 30)).micros(), Some(0));
        assert_eq!(card.rate(de().as_ref(), "utility", true, date!(2026 - 10 - 01)).micros(), Some(45_600));
        assert_eq!(card.rate(de().as_ref(), "service", true, date!(2026 - 09 - 30)).micros(), Some(0));
        assert_eq!(card.rate(de().as_ref(), "marketing", false, date!(2026 - 11 - 01)).micros(), Some(113_100));
        // No market rate: the documentation's utility fallback; marketing unknown, not zero.
        assert_eq!(card.rate(None, "utility", false, date!(2026 - 11 - 01)).micros(), Some(UTILITY_FALLBACK_MICROS));
        assert_eq!(card.rate(None, "utility", true, date!(2026 - 01 - 01)).micros(), Some(0));
        assert_eq!(card.rate(None, "marketing", false, date!(2026 - 11 - 01)), Rate::Unknown);
        assert_eq!(card.rate(None, "service", true, date!(2026 - 11 - 01)), Rate::Unknown);
        // Before the card starts nothing is known.
        assert_eq!(card.rate(de().as_ref(), "utility", false, date!(2024 - 01 - 01)), Rate::Unknown);
    }

    #[test]
    fn amounts_parse_and_format_without_floats() {
        assert_eq!(parse_micros("0.0017"), Some(1_700));
        assert_eq!(parse_micros("1"), Some(1_000_000));
        assert_eq!(parse_micros(".5"), Some(500_000));
        assert_eq!(parse_micros("0.0000001"), None);
        assert_eq!(parse_micros("-1"), None);
        assert_eq!(format_micros(45_600), "0.0456");
        assert_eq!(format_micros(0), "0.00");
        assert_eq!(format_micros(1_250_000), "1.25");
    }

    #[test]
    fn bad_cards_say_which_line() {
        let e = RateCard::parse("market,country_codes,calling_codes,currency,category,applies,rate,effective_from\nX,,1,EUR,utility,sometimes,1,2026-01-01").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(RateCard::parse("market,rate\n").is_err());
    }
}
