//! Rule 5's checklist: four items, each pending / done / failed with its time, read from what
//! Meta exposes. Changes come from webhooks (inside the processor's transaction), from our own
//! steps and from the poller; each change notifies every user of the tenant (a toast and an
//! e-mail in the outbox) and is pushed to open onboarding pages as an `onboarding` live event.

use secrecy::SecretString;
use serde_json::json;
use wabridge_cloud_api::GraphClient;

use super::store::{self, StateRow};
use super::template::DEFAULT_TEMPLATE;
use crate::accounts::{TenantId, UserId};
use crate::config::Settings;
use crate::live::{self, LiveHub, NewEvent};
use crate::store::{Db, Tx};
use crate::web::i18n::Lang;
use crate::with_tx;

/// The four items, in the order the page shows them.
pub const ITEMS: [&str; 4] = ["business_verified", "number_verified", "number_registered", "template_approved"];

/// The item state computed from what Meta said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    /// Item key.
    pub item: &'static str,
    /// `pending`, `done`, `failed`.
    pub state: &'static str,
    /// Meta's words, for the page and support.
    pub detail: String,
}

/// *Business verified*: the portfolio's verification and the WABA's review.
pub fn business_item(state: &StateRow) -> Computed {
    let bv = state.business_verification.clone().unwrap_or_default().to_ascii_lowercase();
    let review = state.account_review.clone().unwrap_or_default().to_ascii_uppercase();
    let s = if bv == "rejected" || review == "REJECTED" {
        "failed"
    } else if bv == "verified" && review == "APPROVED" {
        "done"
    } else {
        "pending"
    };
    let show = |v: &str| if v.is_empty() { "?".to_owned() } else { v.to_owned() };
    Computed { item: "business_verified", state: s, detail: format!("business_verification_status={} account_review_status={}", show(&bv), show(&review)) }
}

/// *Default template approved*: every language (language, status) approved; one rejected
/// fails it.
pub fn template_item(statuses: &[(String, String)]) -> Computed {
    let s = if statuses.iter().any(|(_, s)| s == "REJECTED") {
        "failed"
    } else if !statuses.is_empty() && statuses.iter().all(|(_, s)| s == "APPROVED") {
        "done"
    } else {
        "pending"
    };
    let detail = statuses.iter().map(|(language, status)| format!("{language}={status}")).collect::<Vec<_>>().join(" ");
    Computed { item: "template_approved", state: s, detail }
}

/// An item's detail (Meta's words: `field=VALUE …`, a template's `language=STATUS …`, or an
/// older row's `STATUS,STATUS`, with a reason in parentheses) in the reader's words: the
/// fields and values Meta's documentation names are translated, anything else shown as Meta
/// wrote it.
pub fn detail_words(detail: &str, lang: Lang) -> String {
    let (facts, reason) = match detail.trim_end().strip_suffix(')').and_then(|d| d.split_once(" (")) {
        Some((facts, reason)) => (facts, Some(reason)),
        None => (detail, None),
    };
    let value = |v: &str| lang.lookup(&format!("onboarding.meta_value.{}", v.to_ascii_lowercase())).map_or_else(|| v.to_owned(), str::to_owned);
    let mut parts: Vec<String> = Vec::new();
    for token in facts.split_whitespace() {
        match token.split_once('=') {
            Some((field, v)) => {
                parts.push(format!("{}: {}", lang.word("onboarding.meta_field", field), value(v)));
            }
            None => parts.push(token.split(',').map(value).collect::<Vec<_>>().join(", ")),
        }
    }
    // Rows from before a reason of "NONE" (Meta's with an approval) was left out.
    if let Some(reason) = reason.filter(|r| !r.eq_ignore_ascii_case("none")) {
        parts.push(format!("{}: {}", lang.t("onboarding.meta_field.reason"), value(reason)));
    }
    parts.join(" · ")
}

/// Sets one item; on a real change (other than to pending) notifies the tenant's users and
/// returns the live events to publish after commit. A business or number rejected by Meta
/// fails the tenant's attempt (rule 6); a rejected default template alerts support instead.
pub async fn apply(tx: &mut Tx, tenant: TenantId, c: &Computed, now: i64) -> Result<Vec<NewEvent>, sqlx::Error> {
    let changed = with_tx!(&mut *tx, |x| sqlx::query_scalar::<_, String>(
        "INSERT INTO onboarding_checklist (tenant_id, item, state, detail, changed_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, item) DO UPDATE SET state = excluded.state, detail = excluded.detail, changed_at = excluded.changed_at
         WHERE onboarding_checklist.state <> excluded.state
         RETURNING item"
    )
    .bind(tenant)
    .bind(c.item)
    .bind(c.state)
    .bind(&c.detail)
    .bind(now)
    .fetch_optional(x)
    .await)?;
    // Details change without state changes (a display name review): keep them current quietly.
    with_tx!(&mut *tx, |x| sqlx::query("UPDATE onboarding_checklist SET detail = $1 WHERE tenant_id = $2 AND item = $3")
        .bind(&c.detail)
        .bind(tenant)
        .bind(c.item)
        .execute(x)
        .await
        .map(drop))?;
    let mut events = Vec::new();
    if changed.is_none() {
        return Ok(events);
    }
    events.push(NewEvent::new(tenant, None, "onboarding", &json!({"item": c.item, "state": c.state, "at": now})));
    // The host application hears of it too, by its signed callback.
    crate::api::callbacks::onboarding_changed(tx, tenant, &format!("{}:{}:{now}", c.item, c.state), json!({"item": c.item, "state": c.state, "at": now}), now).await?;
    if c.state == "pending" {
        return Ok(events);
    }
    if c.state == "failed" && matches!(c.item, "business_verified" | "number_verified") {
        store::count_failure(tx, tenant, now).await?;
    }
    if c.state == "failed" && c.item == "template_approved" {
        alert(tx, tenant, "template_rejected", &format!("template_rejected:{}:{now}", tenant.0), &format!("{DEFAULT_TEMPLATE}: {}", c.detail), now).await?;
    }
    let preview_key = format!("onboarding.notify.{}.{}", c.item, c.state);
    let dedupe = format!("onboarding:{}:{}:{now}", c.item, c.state);
    events.extend(notify_users(tx, tenant, false, &preview_key, &dedupe, now).await?);
    Ok(events)
}

/// Tells the tenant's users (or only its owners) about an onboarding or connection change:
/// a notification (toast, bottom-right) and an e-mail in the outbox, once per `dedupe` key.
/// Returns the live events to publish after commit.
pub async fn notify_users(tx: &mut Tx, tenant: TenantId, owners_only: bool, preview_key: &str, dedupe: &str, now: i64) -> Result<Vec<NewEvent>, sqlx::Error> {
    let mut events = Vec::new();
    let users = with_tx!(&mut *tx, |x| sqlx::query_as::<_, (UserId, String, Option<String>)>("SELECT id, email, locale FROM users WHERE tenant_id = $1 AND (NOT $2 OR role = 'owner') ORDER BY id")
        .bind(tenant)
        .bind(owners_only)
        .fetch_all(x)
        .await)?;
    let preview = format!("{}{preview_key}", crate::notifications::KEY_PREFIX);
    let link = "/api-settings/whatsapp".to_owned();
    for (user, email, locale) in users {
        let id = with_tx!(&mut *tx, |x| sqlx::query_scalar::<_, i64>(
            "INSERT INTO notifications (tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at)
             VALUES ($1, $2, 'onboarding', $3, 'WhatsApp', $4, $5, $6)
             ON CONFLICT (user_id, dedupe_key) WHERE user_id IS NOT NULL DO NOTHING RETURNING id"
        )
        .bind(tenant)
        .bind(user)
        .bind(dedupe)
        .bind(&preview)
        .bind(&link)
        .bind(now)
        .fetch_optional(x)
        .await)?;
        if let Some(id) = id {
            events.push(NewEvent::new(tenant, Some(user), "notification", &json!({"id": id, "kind": "onboarding", "actor": "WhatsApp", "preview": preview, "link": link})));
        }
        let lang = locale.as_deref().and_then(Lang::parse).unwrap_or_default();
        let subject = lang.t("onboarding.email.subject").to_owned();
        let body = format!("{}\n\n{}", lang.t(preview_key), lang.t("onboarding.email.footer"));
        with_tx!(&mut *tx, |x| sqlx::query(
            "INSERT INTO email_outbox (tenant_id, to_address, subject, body, dedupe_key, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING"
        )
        .bind(tenant)
        .bind(&email)
        .bind(&subject)
        .bind(&body)
        .bind(format!("{dedupe}:{}", user.0))
        .bind(now)
        .execute(x)
        .await
        .map(drop))?;
    }
    Ok(events)
}

/// Raises an alert for support (once per key).
pub async fn alert(tx: &mut Tx, tenant: TenantId, kind: &str, key: &str, detail: &str, now: i64) -> Result<(), sqlx::Error> {
    tracing::warn!(tenant = tenant.0, kind, "support alert");
    with_tx!(tx, |x| sqlx::query(
        "INSERT INTO support_alerts (tenant_id, kind, dedupe_key, detail, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
    )
    .bind(tenant)
    .bind(kind)
    .bind(key)
    .bind(detail)
    .bind(now)
    .execute(x)
    .await
    .map(drop))
}

/// Applies items outside the webhook road and publishes their events.
pub async fn apply_all(db: &Db, hub: &LiveHub, tenant: TenantId, items: &[Computed], now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut events = Vec::new();
    for c in items {
        events.extend(apply(&mut tx, tenant, c, now).await?);
    }
    live::commit(db, hub, tx, &events, now).await?;
    Ok(())
}

/// Whether every item is final (done or failed): the poller stops then.
pub async fn settled(db: &Db, tenant: TenantId) -> Result<bool, sqlx::Error> {
    let items = store::checklist(db, tenant).await?;
    Ok(ITEMS.iter().all(|i| items.iter().any(|r| r.item == *i && r.state != "pending")))
}

/// The app's credentials for the code exchange and `debug_token`.
pub fn app_credentials(settings: &Settings) -> wabridge_cloud_api::AppCredentials {
    wabridge_cloud_api::AppCredentials { app_id: settings.meta.app_id.clone(), app_secret: settings.meta.app_secret.clone() }
}

/// The tenant's business token, opened.
pub async fn token(db: &Db, settings: &Settings, tenant: TenantId, waba_id: &str) -> anyhow::Result<Option<SecretString>> {
    match store::sealed_token(db, tenant, waba_id).await? {
        Some(sealed) => Ok(Some(settings.keyring.open_str(&sealed, &store::token_context(waba_id))?)),
        None => Ok(None),
    }
}

/// Reads what the Graph API says about the tenant's WABA, number and default template, and
/// updates the checklist. Returns whether the checklist is settled.
pub async fn refresh(db: &Db, hub: &LiveHub, settings: &Settings, graph: &GraphClient, tenant: TenantId, now: i64) -> anyhow::Result<bool> {
    let state = store::state(db, tenant).await?;
    let Some(waba_id) = state.waba_id.clone() else { return Ok(true) };
    let Some(token) = token(db, settings, tenant, &waba_id).await? else { return Ok(true) };
    let waba = graph.waba(&token, &waba_id).await?;
    let mut items = Vec::new();
    let mut next = state.clone();
    next.business_verification = waba.business_verification_status.clone().or(next.business_verification);
    next.account_review = waba.account_review_status.clone().or(next.account_review);
    if let Some(pn) = state.phone_number_id.as_deref() {
        let number = graph.phone_number(&token, pn).await?;
        next.name_status = number.name_status.clone().or(next.name_status);
        let verified = number.code_verification_status.as_deref() == Some("VERIFIED");
        items.push(Computed {
            item: "number_verified",
            state: if verified { "done" } else { "pending" },
            detail: format!("code_verification_status={} name_status={}", number.code_verification_status.as_deref().unwrap_or("?"), next.name_status.as_deref().unwrap_or("?")),
        });
        let connected = number.status.as_deref() == Some("CONNECTED");
        let registered_failed = store::checklist(db, tenant).await?.iter().any(|r| r.item == "number_registered" && r.state == "failed");
        items.push(Computed {
            item: "number_registered",
            state: if connected { "done" } else if registered_failed { "failed" } else { "pending" },
            detail: format!("status={}", number.status.as_deref().unwrap_or("?")),
        });
        if connected {
            store::set_number_status(db, tenant, pn, store::NUMBER_CONNECTED, number.display_phone_number.as_deref(), number.verified_name.as_deref(), now).await?;
        }
    }
    let mut statuses: Vec<(String, String)> = Vec::new();
    let rows = store::templates(db, tenant).await?;
    for row in &rows {
        let status = match row.template_id.as_deref() {
            Some(id) => graph.template(&token, id).await.ok().and_then(|t| t.status).unwrap_or_else(|| row.status.clone()),
            None => row.status.clone(),
        };
        if status != row.status {
            store::upsert_template(db, tenant, &row.language, &waba_id, None, &status, row.reason.as_deref(), now).await?;
        }
        statuses.push((row.language.clone(), status));
    }
    if !rows.is_empty() {
        items.push(template_item(&statuses));
    }
    crate::with_pool!(db.write(), |p| sqlx::query(
        "UPDATE onboarding_state SET business_verification = $1, account_review = $2, name_status = $3, updated_at = $4 WHERE tenant_id = $5"
    )
    .bind(&next.business_verification)
    .bind(&next.account_review)
    .bind(&next.name_status)
    .bind(now)
    .bind(tenant)
    .execute(p)
    .await
    .map(drop))?;
    items.insert(0, business_item(&next));
    apply_all(db, hub, tenant, &items, now).await?;
    Ok(settled(db, tenant).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_words_in_the_readers() {
        let de = |d: &str| detail_words(d, Lang::De);
        assert_eq!(de("business_verification_status=pending account_review_status=PENDING"), "Verifizierung des Business: ausstehend · Prüfung des WhatsApp-Kontos: ausstehend");
        assert_eq!(de("code_verification_status=VERIFIED name_status=PENDING_REVIEW"), "Bestätigung der Nummer per Code: verifiziert · Prüfung des Anzeigenamens: in Prüfung");
        assert_eq!(de("status=?"), "Status der Nummer: unbekannt");
        assert_eq!(de("de=APPROVED en=REJECTED (INVALID_FORMAT)"), "Deutsch: freigegeben · Englisch: abgelehnt · Grund: INVALID_FORMAT");
        // A row from before the languages were named.
        assert_eq!(de("PENDING,APPROVED"), "ausstehend, freigegeben");
        assert_eq!(de("APPROVED,APPROVED (NONE)"), "freigegeben, freigegeben");
        // What Meta's documentation does not name stays as Meta wrote it.
        assert_eq!(de("status=SOMETHING_NEW quality=GREEN"), "Status der Nummer: SOMETHING_NEW · quality: GREEN");
        assert_eq!(de(""), "");
        assert_eq!(detail_words("de=PENDING en=APPROVED", Lang::En), "German: pending · English: approved");
    }

    #[test]
    fn the_template_item_names_each_language() {
        let pair = |l: &str, s: &str| (l.to_owned(), s.to_owned());
        let item = template_item(&[pair("de", "APPROVED"), pair("en", "PENDING")]);
        assert_eq!((item.state, item.detail.as_str()), ("pending", "de=APPROVED en=PENDING"));
        assert_eq!(template_item(&[pair("de", "APPROVED"), pair("en", "APPROVED")]).state, "done");
        assert_eq!(template_item(&[pair("de", "REJECTED"), pair("en", "APPROVED")]).state, "failed");
        assert_eq!(template_item(&[]).state, "pending");
    }
}
