//! Costs: what every outbound message costs, by Meta's own pricing data and a dated rate card.
//!
//! Meta's status webhooks carry `pricing {type, category}` — never an amount — on `sent` and
//! on one of `delivered`/`read`. [`CostRecorder`] records one cost per message (by wamid) from
//! whichever status brings it first: `regular` at the card's rate for the customer's market on
//! that day, `free_customer_service` and `free_entry_point` free, any other type kept with an
//! unknown amount and flagged. The preview before a send uses the same card ([`preview`]).

pub mod rate_card;

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use time::Date;
use wabridge_cloud_api::webhook::{Pricing, Status, StatusKind};

pub use rate_card::{Market, Rate, RateCard, day_of, format_micros};

use crate::accounts::{TenantId, store as accounts};
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::inbox::window::WINDOW_MS;
use crate::store::{Db, Tx, keep_prepared, select_in, statement_chunks, value_rows};
use crate::web::context::{SupportStaff, TenantMember};
use crate::web::i18n::Lang;
use crate::web::error::{AppError, AppResult};
use crate::web::{AppState, PageCtx, render};
use crate::{with_pool, with_tx};

/// Meta's pricing page, linked wherever costs are shown (as the documentation does).
pub const META_PRICING_URL: &str = "https://developers.facebook.com/docs/whatsapp/pricing";

/// Pricing types Meta documents; anything else is kept and flagged.
const FREE_TYPES: &[&str] = &["free_customer_service", "free_entry_point"];

/// Records each outbound message's cost from the `pricing` of its statuses.
pub struct CostRecorder {
    /// The card amounts are computed with.
    pub card: Arc<RateCard>,
}

#[derive(sqlx::FromRow)]
struct SentFacts {
    id: i64,
    wamid: Option<String>,
    outbox_id: Option<i64>,
    meta_at: i64,
    last_customer_message_at: Option<i64>,
    phone: Option<String>,
    bsuid: Option<String>,
}

impl ChangeHandler for CostRecorder {
    fn name(&self) -> &'static str {
        "billing"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        self.apply_all(tx, std::slice::from_ref(change), effects)
    }

    fn apply_all<'a>(&'a self, tx: &'a mut Tx, changes: &'a [RoutedChange<'a>], _effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            // The first priced status of each message counts (the insert keeps the first too).
            let mut priced: Vec<(TenantId, &str, &Status, &Pricing, i64)> = Vec::new();
            let mut seen = HashSet::new();
            for change in changes {
                for status in change.change.statuses() {
                    let (Some(pricing), Some(wamid)) = (&status.pricing, &status.id) else { continue };
                    if matches!(status.status, Some(StatusKind::Failed)) || !seen.insert((change.tenant, wamid.as_str())) {
                        continue;
                    }
                    priced.push((change.tenant, wamid, status, pricing, change.now));
                }
            }
            if priced.is_empty() {
                return Ok(());
            }
            // What we sent: by Meta's id, else by the outbox id Meta echoes.
            const FACTS: &str = "SELECT m.id, m.wamid, m.outbox_id, m.meta_at, c.last_customer_message_at, u.phone, u.bsuid
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN customers u ON u.id = c.customer_id
                 WHERE m.tenant_id = $1 AND m.direction = 'out'";
            // `+` keeps SQLite on the outbox index instead of scanning the tenant's messages.
            const FACTS_BY_OUTBOX: &str = "SELECT m.id, m.wamid, m.outbox_id, m.meta_at, c.last_customer_message_at, u.phone, u.bsuid
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN customers u ON u.id = c.customer_id
                 WHERE +m.tenant_id = $1 AND m.direction = 'out'";
            let wamids = priced.iter().map(|&(tenant, wamid, ..)| (tenant, wamid.to_owned()));
            let mut by_wamid: HashMap<(TenantId, String), SentFacts> = HashMap::new();
            for (tenant, facts) in select_in::<SentFacts, _>(tx, FACTS, "m.wamid", wamids).await? {
                if let Some(w) = facts.wamid.clone() {
                    by_wamid.insert((tenant, w), facts);
                }
            }
            let outboxes = priced
                .iter()
                .filter(|&&(tenant, wamid, ..)| !by_wamid.contains_key(&(tenant, wamid.to_owned())))
                .filter_map(|&(tenant, _, status, ..)| outbox_of(status).map(|o| (tenant, o)));
            let mut by_outbox: HashMap<(TenantId, i64), SentFacts> = HashMap::new();
            for (tenant, facts) in select_in::<SentFacts, _>(tx, FACTS_BY_OUTBOX, "m.outbox_id", outboxes).await? {
                if let Some(o) = facts.outbox_id {
                    by_outbox.entry((tenant, o)).or_insert(facts);
                }
            }
            let costs: Vec<Cost> = priced
                .iter()
                .map(|&(tenant, wamid, status, pricing, now)| {
                    let facts = by_wamid.get(&(tenant, wamid.to_owned())).or_else(|| outbox_of(status).and_then(|o| by_outbox.get(&(tenant, o))));
                    self.cost(tenant, wamid, status, pricing, facts, now)
                })
                .collect();
            for chunk in statement_chunks(tx.engine(), &costs) {
                let prepared = keep_prepared(tx.engine());
                let sql = format!(
                    "INSERT INTO message_costs (tenant_id, wamid, message_id, category, pricing_type, market, inside_window, amount_micros, currency, flagged, day, priced_at, created_at)
                     VALUES {} ON CONFLICT (tenant_id, wamid) DO NOTHING",
                    value_rows(tx.engine(), chunk.len(), 13, 1)
                );
                with_tx!(&mut *tx, |c| {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
                    for k in chunk {
                        q = q
                            .bind(k.tenant)
                            .bind(k.wamid)
                            .bind(k.message_id)
                            .bind(&k.category)
                            .bind(&k.pricing_type)
                            .bind(&k.market)
                            .bind(k.inside_window)
                            .bind(k.amount)
                            .bind("EUR")
                            .bind(k.flagged)
                            .bind(k.day.to_string())
                            .bind(k.priced_at)
                            .bind(k.now);
                    }
                    q.execute(c).await.map(drop)
                })?;
            }
            Ok(())
        })
    }
}

/// One message's cost, as stored.
struct Cost<'a> {
    tenant: TenantId,
    wamid: &'a str,
    message_id: Option<i64>,
    category: String,
    pricing_type: String,
    market: Option<String>,
    inside_window: bool,
    amount: Option<i64>,
    flagged: bool,
    day: Date,
    priced_at: i64,
    now: i64,
}

fn outbox_of(status: &Status) -> Option<i64> {
    crate::outbox::id_from_callback(status.biz_opaque_callback_data.as_deref()).map(|o| o.0)
}

impl CostRecorder {
    /// The cost of a message from its priced status and what we know of the send: `regular`
    /// at the card's rate for the customer's market on that day, the free types free, any
    /// other type unknown and flagged.
    fn cost<'a>(&self, tenant: TenantId, wamid: &'a str, status: &Status, pricing: &Pricing, facts: Option<&SentFacts>, now: i64) -> Cost<'a> {
        let status_ms = status.timestamp.map_or(now, |s| s * 1000);
        let sent_at = facts.map_or(status_ms, |f| f.meta_at.min(status_ms));
        let phone = status.recipient_id.clone().or_else(|| facts.and_then(|f| f.phone.clone()));
        let bsuid = status.recipient_user_id.clone().or_else(|| facts.and_then(|f| f.bsuid.clone()));
        let inside = facts.and_then(|f| f.last_customer_message_at).is_some_and(|last| last <= sent_at && sent_at < last + WINDOW_MS);
        let category = pricing.category.clone().unwrap_or_else(|| "unknown".to_owned()).to_ascii_lowercase();
        let pricing_type = pricing.pricing_type.clone().unwrap_or_else(|| "unknown".to_owned()).to_ascii_lowercase();
        let market = self.card.market_for(phone.as_deref(), bsuid.as_deref());
        let day = day_of(status_ms);
        let (amount, flagged) = match pricing_type.as_str() {
            "regular" => (self.card.rate(market.as_ref(), &category, inside, day).micros(), false),
            t if FREE_TYPES.contains(&t) => (Some(0), false),
            _ => (None, true),
        };
        if flagged {
            tracing::warn!(pricing_type, wamid, "unknown pricing type kept and flagged");
        }
        Cost {
            tenant,
            wamid,
            message_id: facts.map(|f| f.id),
            category,
            pricing_type,
            market: market.map(|m| m.name.clone()),
            inside_window: inside,
            amount,
            flagged,
            day,
            priced_at: status_ms,
            now,
        }
    }
}

/// What a message is expected to cost before it is sent.
#[derive(Clone, Debug, Serialize)]
pub struct CostPreview {
    /// The customer's market, when the card has one.
    pub market: Option<String>,
    /// Pricing category (`utility`, `marketing`, `authentication`, `service`).
    pub category: String,
    /// Whether the customer service window is open.
    pub inside_window: bool,
    /// Millionths of EUR; `None` when nobody knows.
    pub amount_micros: Option<i64>,
}

impl CostPreview {
    /// `0,0456 €` in the reader's notation, or `None` when unknown.
    pub fn amount_text(&self, lang: Lang) -> Option<String> {
        self.amount_micros.map(|m| money(m, lang))
    }
}

/// An amount of EUR in the reader's notation: `0,0456 €` in German, `€0.0456` in English. (The
/// API and the CSV exports keep `0.0456` with the currency apart.)
pub fn money(micros: i64, lang: Lang) -> String {
    let figures = format_micros(micros);
    match lang {
        Lang::De => format!("{} €", figures.replace('.', ",")),
        Lang::En => format!("€{figures}"),
    }
}

/// The expected cost of sending a `category` message to this customer now.
pub fn preview(card: &RateCard, phone: Option<&str>, bsuid: Option<&str>, category: &str, inside_window: bool, now_ms: i64) -> CostPreview {
    let market = card.market_for(phone, bsuid);
    let amount_micros = card.rate(market.as_ref(), category, inside_window, day_of(now_ms)).micros();
    CostPreview { market: market.map(|m| m.name), category: category.to_ascii_lowercase(), inside_window, amount_micros }
}

/// A recorded cost.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CostRow {
    /// Meta's message id.
    pub wamid: String,
    /// Our message id.
    pub message_id: Option<i64>,
    /// Meta's pricing category.
    pub category: String,
    /// Meta's pricing type.
    pub pricing_type: String,
    /// The customer's market.
    pub market: Option<String>,
    /// Sent inside the window.
    pub inside_window: bool,
    /// Millionths of EUR, `None` when unknown.
    pub amount_micros: Option<i64>,
    /// Currency.
    pub currency: String,
    /// An unknown pricing type.
    pub flagged: bool,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
}

const COST_COLUMNS: &str = "wamid, message_id, category, pricing_type, market, inside_window, amount_micros, currency, flagged, day";

/// The cost of one message of a tenant (by our message id).
pub async fn cost_of_message(db: &Db, tenant: TenantId, message_id: i64) -> Result<Option<CostRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COST_COLUMNS} FROM message_costs WHERE tenant_id = $1 AND (message_id = $2 OR wamid = (SELECT wamid FROM messages WHERE id = $2 AND tenant_id = $1))"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, CostRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(message_id).fetch_optional(p).await)
}

/// A month, `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month(pub Date);

impl Month {
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
        Date::from_calendar_date(y.parse().ok()?, month, 1).ok().map(Month)
    }

    /// The month of a Unix-ms time (UTC).
    pub fn of(ms: i64) -> Month {
        let d = day_of(ms);
        Month(d.replace_day(1).unwrap_or(d))
    }

    /// The month in the reader's words ("Dezember 2026").
    pub fn label(self, lang: Lang) -> String {
        format!("{} {}", lang.t(&format!("month.{}", u8::from(self.0.month()))), self.0.year())
    }

    /// `YYYY-MM`.
    pub fn key(self) -> String {
        format!("{:04}-{:02}", self.0.year(), u8::from(self.0.month()))
    }

    /// Days in the month.
    pub fn days(self) -> u8 {
        self.0.month().length(self.0.year())
    }

    /// First and last day as `YYYY-MM-DD`.
    fn bounds(self) -> (String, String) {
        (format!("{}-01", self.key()), format!("{}-{:02}", self.key(), self.days()))
    }

    /// The month before.
    pub fn previous(self) -> Month {
        Month(self.0.previous_day().and_then(|d| d.replace_day(1).ok()).unwrap_or(self.0))
    }

    /// The month after.
    pub fn next(self) -> Month {
        Month(self.0.checked_add(time::Duration::days(i64::from(self.days()))).unwrap_or(self.0))
    }
}

/// Costs of one category in a month.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct CategoryTotal {
    /// Category.
    pub category: String,
    /// Messages.
    pub messages: i64,
    /// Known amounts, summed (millionths).
    pub micros: i64,
    /// Messages whose amount is unknown.
    pub unknown: i64,
}

/// Costs of one day.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct DayTotal {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Messages.
    pub messages: i64,
    /// Known amounts, summed (millionths).
    pub micros: i64,
    /// Messages whose amount is unknown.
    pub unknown: i64,
}

/// A tenant's month.
#[derive(Clone, Debug, Serialize)]
pub struct MonthSummary {
    /// `YYYY-MM`.
    pub month: String,
    /// Sum of known amounts (millionths of EUR).
    pub total_micros: i64,
    /// Messages.
    pub messages: i64,
    /// Messages with an unknown amount (the total is then a lower bound).
    pub unknown: i64,
    /// By category.
    pub by_category: Vec<CategoryTotal>,
    /// By day (days with messages).
    pub by_day: Vec<DayTotal>,
}

/// Sums a tenant's costs of a month.
pub async fn month_summary(db: &Db, tenant: TenantId, month: Month) -> Result<MonthSummary, sqlx::Error> {
    let (first, last) = month.bounds();
    let by_category = with_pool!(db.read(), |p| sqlx::query_as::<_, CategoryTotal>(
        "SELECT category, COUNT(*) AS messages, CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) AS micros,
                CAST(COALESCE(SUM(CASE WHEN amount_micros IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS unknown
         FROM message_costs WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY category ORDER BY category"
    )
    .bind(tenant)
    .bind(&first)
    .bind(&last)
    .fetch_all(p)
    .await)?;
    let by_day = with_pool!(db.read(), |p| sqlx::query_as::<_, DayTotal>(
        "SELECT day, COUNT(*) AS messages, CAST(COALESCE(SUM(amount_micros), 0) AS BIGINT) AS micros,
                CAST(COALESCE(SUM(CASE WHEN amount_micros IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS unknown
         FROM message_costs WHERE tenant_id = $1 AND day >= $2 AND day <= $3 GROUP BY day ORDER BY day"
    )
    .bind(tenant)
    .bind(&first)
    .bind(&last)
    .fetch_all(p)
    .await)?;
    Ok(MonthSummary {
        month: month.key(),
        total_micros: by_category.iter().map(|c| c.micros).sum(),
        messages: by_category.iter().map(|c| c.messages).sum(),
        unknown: by_category.iter().map(|c| c.unknown).sum(),
        by_category,
        by_day,
    })
}

/// Every cost of a tenant in a month (for the CSV export).
pub async fn month_rows(db: &Db, tenant: TenantId, month: Month) -> Result<Vec<CostRow>, sqlx::Error> {
    let (first, last) = month.bounds();
    let sql = format!("SELECT {COST_COLUMNS} FROM message_costs WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, id");
    with_pool!(db.read(), |p| sqlx::query_as::<_, CostRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(&first).bind(&last).fetch_all(p).await)
}

/// The daily chart as inline SVG (no script, no styles: the CSP allows neither inline).
pub fn chart_svg(month: Month, days: &[DayTotal], title: &str, lang: Lang) -> String {
    let n = i64::from(month.days());
    let (w, h, pad) = (620i64, 160i64, 20i64);
    let bar_w = (w - 2 * pad) / n;
    let max = days.iter().map(|d| d.micros).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"cost-chart\" id=\"cost-chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        askama_escape(title)
    );
    let _ = write!(svg, "<line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>", h - pad, w - pad, h - pad);
    for d in days {
        let Some(day) = d.day.get(8..10).and_then(|s| s.parse::<i64>().ok()) else { continue };
        let height = if d.micros == 0 { 2 } else { (d.micros * (h - 2 * pad) / max).max(2) };
        let x = pad + (day - 1) * bar_w + 1;
        let _ = write!(
            svg,
            "<rect class=\"bar\" data-day=\"{}\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{height}\" fill=\"#2a7d4f\"><title>{}: {} ({} {})</title></rect>",
            d.day,
            h - pad - height,
            (bar_w - 2).max(1),
            d.day,
            money(d.micros, lang),
            d.messages,
            lang.t("billing.col_messages")
        );
    }
    for day in [1, 10, 20, n] {
        let _ = write!(svg, "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#555\">{day}</text>", pad + (day - 1) * bar_w, h - 5);
    }
    svg.push_str("</svg>");
    svg
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Routes of this feature.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/costs", get(get_costs))
        .route("/costs/export.csv", get(get_costs_csv))
        .route("/support/costs", get(get_support_costs))
        .route("/support/costs/export.csv", get(get_support_costs_csv))
        .route("/support/tenants/{tenant_id}/costs", get(get_support_tenant_costs))
        .route("/support/tenants/{tenant_id}/costs/export.csv", get(get_support_tenant_costs_csv))
}

#[derive(Deserialize)]
struct MonthQuery {
    month: Option<String>,
}

fn month_of(q: &MonthQuery, app: &AppState) -> AppResult<Month> {
    match q.month.as_deref().filter(|m| !m.is_empty()) {
        Some(m) => Month::parse(m).ok_or(AppError::BadRequest("bad_month")),
        None => Ok(Month::of(app.clock.now_ms())),
    }
}

/// A month and its neighbours, as the pages link them (`YYYY-MM`) and name them.
struct MonthNav {
    key: String,
    label: String,
    previous: String,
    previous_label: String,
    next: String,
    next_label: String,
}

impl MonthNav {
    fn new(month: Month, lang: Lang) -> MonthNav {
        let (previous, next) = (month.previous(), month.next());
        MonthNav {
            key: month.key(),
            label: month.label(lang),
            previous: previous.key(),
            previous_label: previous.label(lang),
            next: next.key(),
            next_label: next.label(lang),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "costs.html")]
struct CostsPage {
    p: PageCtx,
    summary: MonthSummary,
    total: String,
    nav: MonthNav,
    chart: String,
    pricing_url: &'static str,
    export: String,
    tenant_name: Option<String>,
    base: String,
}

fn costs_page(p: PageCtx, month: Month, summary: MonthSummary, base: String, tenant_name: Option<String>) -> CostsPage {
    let chart = chart_svg(month, &summary.by_day, p.t("billing.chart_title"), p.lang);
    CostsPage {
        total: money(summary.total_micros, p.lang),
        nav: MonthNav::new(month, p.lang),
        chart,
        pricing_url: META_PRICING_URL,
        export: format!("{base}/export.csv?month={}", month.key()),
        summary,
        tenant_name,
        base,
        p,
    }
}

async fn get_costs(State(app): State<AppState>, member: TenantMember, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    let summary = month_summary(&app.db, member.tenant, month).await?;
    render(&costs_page(member.ctx.into(), month, summary, "/costs".to_owned(), None))
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

fn csv_response(name: &str, body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))],
        body,
    )
        .into_response()
}

/// The CSV of a tenant's month, one line per message.
pub fn rows_csv(rows: &[CostRow]) -> String {
    let mut out = String::from("day,wamid,category,pricing_type,market,inside_window,amount,currency,flagged\n");
    for r in rows {
        let amount = r.amount_micros.map(format_micros).unwrap_or_else(|| "unknown".to_owned());
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            r.day,
            csv_field(&r.wamid),
            csv_field(&r.category),
            csv_field(&r.pricing_type),
            csv_field(r.market.as_deref().unwrap_or("")),
            r.inside_window,
            amount,
            r.currency,
            r.flagged
        );
    }
    out
}

async fn get_costs_csv(State(app): State<AppState>, member: TenantMember, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    let rows = month_rows(&app.db, member.tenant, month).await?;
    Ok(csv_response(&format!("costs-{}.csv", month.key()), rows_csv(&rows)))
}

struct TenantCosts {
    id: i64,
    name: String,
    summary: MonthSummary,
}

#[derive(askama::Template)]
#[template(path = "support_costs.html")]
struct SupportCostsPage {
    p: PageCtx,
    nav: MonthNav,
    tenants: Vec<TenantCosts>,
    pricing_url: &'static str,
}

async fn all_tenants_month(app: &AppState, month: Month) -> AppResult<Vec<TenantCosts>> {
    let mut out = Vec::new();
    for t in accounts::all_tenants(&app.db).await? {
        let summary = month_summary(&app.db, t.id, month).await?;
        out.push(TenantCosts { id: t.id.0, name: t.name, summary });
    }
    Ok(out)
}

async fn get_support_costs(State(app): State<AppState>, staff: SupportStaff, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    crate::support::log_read(&app.db, staff.user.id, None, "costs", app.clock.now_ms()).await?;
    let tenants = all_tenants_month(&app, month).await?;
    render(&SupportCostsPage {
        nav: MonthNav::new(month, staff.ctx.lang),
        tenants,
        pricing_url: META_PRICING_URL,
        p: staff.ctx.into(),
    })
}

async fn get_support_costs_csv(State(app): State<AppState>, staff: SupportStaff, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    crate::support::log_read(&app.db, staff.user.id, None, "costs_export", app.clock.now_ms()).await?;
    let mut out = String::from("tenant_id,tenant,month,category,messages,amount,unknown_amounts\n");
    for t in all_tenants_month(&app, month).await? {
        for c in &t.summary.by_category {
            let _ = writeln!(out, "{},{},{},{},{},{},{}", t.id, csv_field(&t.name), t.summary.month, csv_field(&c.category), c.messages, format_micros(c.micros), c.unknown);
        }
    }
    Ok(csv_response(&format!("costs-all-{}.csv", month.key()), out))
}

async fn get_support_tenant_costs(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    crate::support::log_read(&app.db, staff.user.id, Some(tenant.id), "costs", app.clock.now_ms()).await?;
    let summary = month_summary(&app.db, tenant.id, month).await?;
    render(&costs_page(staff.ctx.into(), month, summary, format!("/support/tenants/{tenant_id}/costs"), Some(tenant.name)))
}

async fn get_support_tenant_costs_csv(State(app): State<AppState>, staff: SupportStaff, Path(tenant_id): Path<i64>, Query(q): Query<MonthQuery>) -> AppResult<Response> {
    let month = month_of(&q, &app)?;
    let tenant = accounts::tenant(&app.db, TenantId(tenant_id)).await?.ok_or(AppError::NotFound)?;
    crate::support::log_read(&app.db, staff.user.id, Some(tenant.id), "costs_export", app.clock.now_ms()).await?;
    let rows = month_rows(&app.db, tenant.id, month).await?;
    Ok(csv_response(&format!("costs-{}-{}.csv", tenant.id.0, month.key()), rows_csv(&rows)))
}
