//! Meta's webhooks for onboarding: the WABA review, the display-name review and the default
//! template's review drive the checklist; `account_update` is acknowledged. The reviews use
//! the cloud-api crate's types; the template and account events read the raw value, whose ids
//! Meta sends as numbers or strings. Each handler is
//! idempotent: a repeated change finds the item already in that state and changes nothing.

use std::sync::Arc;

use serde_json::Value;
use wabridge_cloud_api::webhook::ChangeValue;

use super::checklist::{self, Computed};
use super::{health, store};
use super::template::DEFAULT_TEMPLATE;
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, Registry, RoutedChange};
use crate::with_tx;

fn raw<'a>(change: &'a RoutedChange<'a>) -> &'a Value {
    &change.change.change.raw_value
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Subscribes onboarding's handlers.
pub fn subscribe(registry: Registry) -> Registry {
    registry
        .subscribe("account_review_update", Arc::new(AccountReview))
        .subscribe("phone_number_name_update", Arc::new(NameReview))
        .subscribe("message_template_status_update", Arc::new(TemplateReview))
        .subscribe("account_update", Arc::new(AccountUpdate))
}

/// `account_review_update`: the WABA's review, half of *business verified*.
pub struct AccountReview;

impl ChangeHandler for AccountReview {
    fn name(&self) -> &'static str {
        "onboarding"
    }

    fn apply<'a>(&'a self, tx: &'a mut crate::store::Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let ChangeValue::AccountReview(review) = change.change.value() else { return Ok(()) };
            let Some(decision) = review.decision.clone() else { return Ok(()) };
            with_tx!(&mut *tx, |c| sqlx::query("UPDATE onboarding_state SET account_review = $1, updated_at = $2 WHERE tenant_id = $3")
                .bind(&decision)
                .bind(change.now)
                .bind(change.tenant)
                .execute(c)
                .await
                .map(drop))?;
            let state = store::state_tx(tx, change.tenant).await?;
            if state.waba_id.is_none() {
                return Ok(());
            }
            effects.events.extend(checklist::apply(tx, change.tenant, &checklist::business_item(&state), change.now).await?);
            Ok(())
        })
    }
}

/// `phone_number_name_update`: the display name's review, shown beside *number verified*
/// (it does not block: Meta may leave it pending for long).
pub struct NameReview;

impl ChangeHandler for NameReview {
    fn name(&self) -> &'static str {
        "onboarding"
    }

    fn apply<'a>(&'a self, tx: &'a mut crate::store::Tx, change: &'a RoutedChange<'a>, _effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let ChangeValue::PhoneNumberName(update) = change.change.value() else { return Ok(()) };
            let Some(decision) = update.decision.clone() else { return Ok(()) };
            let status = if decision == "REJECTED" { "DECLINED".to_owned() } else { decision.clone() };
            with_tx!(&mut *tx, |c| sqlx::query("UPDATE onboarding_state SET name_status = $1, updated_at = $2 WHERE tenant_id = $3")
                .bind(&status)
                .bind(change.now)
                .bind(change.tenant)
                .execute(c)
                .await
                .map(drop))?;
            if decision == "APPROVED"
                && let Some(name) = &update.requested_verified_name
            {
                with_tx!(&mut *tx, |c| sqlx::query(
                    "UPDATE phone_numbers SET verified_name = $1, updated_at = $2
                     WHERE tenant_id = $3 AND phone_number_id = (SELECT phone_number_id FROM onboarding_state WHERE tenant_id = $3)"
                )
                .bind(name)
                .bind(change.now)
                .bind(change.tenant)
                .execute(c)
                .await
                .map(drop))?;
            }
            Ok(())
        })
    }
}

/// `message_template_status_update` for the default template: *default template approved*.
pub struct TemplateReview;

impl ChangeHandler for TemplateReview {
    fn name(&self) -> &'static str {
        "onboarding"
    }

    fn apply<'a>(&'a self, tx: &'a mut crate::store::Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let v = raw(change);
            if text(v, "message_template_name").as_deref() != Some(DEFAULT_TEMPLATE) {
                return Ok(());
            }
            let (Some(event), Some(id)) = (text(v, "event"), text(v, "message_template_id")) else { return Ok(()) };
            let reason = [v.get("rejection_info").and_then(|r| text(r, "reason")), text(v, "reason")]
                .into_iter()
                .find_map(|r| crate::templates::handler::given_reason(r.as_deref()).map(str::to_owned));
            // Meta reviews each language on its own, and on PostgreSQL two processors may apply
            // the two reviews at once: each would read the other's row as it was and leave the
            // item pending. The tenant's onboarding row is written first, so the second waits
            // for the first to commit and then reads its status.
            with_tx!(&mut *tx, |c| sqlx::query("UPDATE onboarding_state SET updated_at = $1 WHERE tenant_id = $2")
                .bind(change.now)
                .bind(change.tenant)
                .execute(c)
                .await
                .map(drop))?;
            let updated = with_tx!(&mut *tx, |c| sqlx::query(
                "UPDATE onboarding_templates SET status = $1, reason = $2, updated_at = $3 WHERE tenant_id = $4 AND template_id = $5"
            )
            .bind(&event)
            .bind(&reason)
            .bind(change.now)
            .bind(change.tenant)
            .bind(&id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            if updated == 0 {
                return Ok(());
            }
            let statuses = with_tx!(&mut *tx, |c| sqlx::query_as::<_, (String, String)>("SELECT language, status FROM onboarding_templates WHERE tenant_id = $1 ORDER BY language")
                .bind(change.tenant)
                .fetch_all(c)
                .await)?;
            let mut item: Computed = checklist::template_item(&statuses);
            if let Some(r) = &reason {
                item.detail = format!("{} ({r})", item.detail);
            }
            effects.events.extend(checklist::apply(tx, change.tenant, &item, change.now).await?);
            Ok(())
        })
    }
}

/// `account_update`: `PARTNER_APP_INSTALLED` confirms the signup (it arrives before or after
/// the page's report; the signup does not wait for it, and falls back to it when neither the
/// session info nor the token's scopes name the WABA). `PARTNER_REMOVED` and a ban
/// (`DISABLED_UPDATE` with `DISABLE`) mark the connection and tell the users; `REINSTATE`
/// lifts the ban. Marks are idempotent, so a redelivered change tells nobody twice.
pub struct AccountUpdate;

impl ChangeHandler for AccountUpdate {
    fn name(&self) -> &'static str {
        "onboarding"
    }

    fn apply<'a>(&'a self, tx: &'a mut crate::store::Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let v = raw(change);
            let event = text(v, "event").unwrap_or_default();
            tracing::info!(tenant = change.tenant.0, event, "account_update");
            let waba = v.get("waba_info").and_then(|w| text(w, "waba_id")).or_else(|| change.change.waba_id().map(str::to_owned));
            let Some(waba) = waba else { return Ok(()) };
            match event.as_str() {
                "PARTNER_REMOVED" => {
                    effects.events.extend(health::mark(tx, change.tenant, &waba, health::PARTNER_REMOVED, "PARTNER_REMOVED", change.now).await?);
                }
                "DISABLED_UPDATE" => {
                    let ban = v.get("ban_info").and_then(|b| b.get("waba_ban_state"));
                    let states: Vec<String> = match ban {
                        Some(Value::String(s)) => vec![s.clone()],
                        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                        _ => Vec::new(),
                    };
                    let date = v.get("ban_info").and_then(|b| text(b, "waba_ban_date")).unwrap_or_default();
                    if states.iter().any(|s| s == "DISABLE") {
                        let detail = format!("DISABLED_UPDATE DISABLE {date}");
                        effects.events.extend(health::mark(tx, change.tenant, &waba, health::DISABLED, &detail, change.now).await?);
                    } else if states.iter().any(|s| s == "REINSTATE") {
                        effects.events.extend(health::reinstate(tx, change.tenant, &waba, change.now).await?);
                    } else if states.iter().any(|s| s == "SCHEDULE_FOR_DISABLE") {
                        let key = format!("schedule_for_disable:{waba}:{date}");
                        checklist::alert(tx, change.tenant, "schedule_for_disable", &key, &format!("WABA {waba}: {date}"), change.now).await?;
                    }
                }
                _ => {}
            }
            Ok(())
        })
    }
}
