//! Meta's template webhooks: review results and pauses (`message_template_status_update`),
//! recategorisation (`template_category_update`) and quality (`message_template_quality_update`).
//! A template the tenant's WABA has but we never stored (the default one submitted at
//! onboarding, one made in WhatsApp Manager) is stored from the webhook; the sync fills in its
//! text.

use serde_json::json;
use wabridge_cloud_api::webhook::{ChangeValue, TemplateStatusEvent};

use super::store::{self, TemplateFacts, status_from_meta};
use crate::accounts::{TenantId, UserId};
use crate::ingest::{ChangeHandler, Effects, HandlerFuture, RoutedChange};
use crate::live::NewEvent;
use crate::store::Tx;
use crate::with_tx;

/// Keeps template status, category and quality current.
pub struct TemplateHandler;

/// A reason Meta gives with a template's status, when it gives one: `NONE` (sent with an
/// approval) and an empty one are none.
pub fn given_reason(reason: Option<&str>) -> Option<&str> {
    reason.filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case("none"))
}

fn event_name(e: &TemplateStatusEvent) -> String {
    match e {
        TemplateStatusEvent::Approved => "APPROVED".to_owned(),
        TemplateStatusEvent::Rejected => "REJECTED".to_owned(),
        TemplateStatusEvent::Pending => "PENDING".to_owned(),
        TemplateStatusEvent::Paused => "PAUSED".to_owned(),
        TemplateStatusEvent::Disabled => "DISABLED".to_owned(),
        TemplateStatusEvent::Flagged => "FLAGGED".to_owned(),
        TemplateStatusEvent::Reinstated => "REINSTATED".to_owned(),
        TemplateStatusEvent::Deleted => "DELETED".to_owned(),
        TemplateStatusEvent::PendingDeletion => "PENDING_DELETION".to_owned(),
        TemplateStatusEvent::Archived => "ARCHIVED".to_owned(),
        TemplateStatusEvent::Unarchived => "UNARCHIVED".to_owned(),
        TemplateStatusEvent::InAppeal => "IN_APPEAL".to_owned(),
        TemplateStatusEvent::LimitExceeded => "LIMIT_EXCEEDED".to_owned(),
        TemplateStatusEvent::Locked => "LOCKED".to_owned(),
        TemplateStatusEvent::Other(s) => s.clone(),
    }
}

impl ChangeHandler for TemplateHandler {
    fn name(&self) -> &'static str {
        "templates"
    }

    fn apply<'a>(&'a self, tx: &'a mut Tx, change: &'a RoutedChange<'a>, effects: &'a mut Effects) -> HandlerFuture<'a> {
        Box::pin(async move {
            let Some(waba) = change.change.waba_id() else { return Ok(()) };
            let tenant = change.tenant;
            match change.change.value() {
                ChangeValue::TemplateStatus(u) => {
                    let (Some(name), Some(language), Some(event)) = (u.message_template_name.as_deref(), u.message_template_language.as_deref(), u.event.as_ref()) else {
                        return Ok(());
                    };
                    let status = status_from_meta(&event_name(event));
                    let reason = [&u.rejection_reason, &u.reason, &u.other_info_title].into_iter().find_map(|r| given_reason(r.as_deref())).map(str::to_owned);
                    let category = u.message_template_category.as_deref().map(str::to_ascii_uppercase);
                    let (id, before) = store::upsert(
                        tx,
                        tenant,
                        waba,
                        &TemplateFacts {
                            meta_template_id: u.message_template_id.as_deref(),
                            name,
                            language,
                            category: category.as_deref(),
                            parameter_format: None,
                            components: None,
                            status: Some(&status),
                            reason: reason.as_deref(),
                        },
                        change.now,
                    )
                    .await?;
                    if before.as_deref() == Some("UTILITY") && category.as_deref() == Some("MARKETING") {
                        warn_recategorized(tx, tenant, waba, name, language, change.now).await?;
                    }
                    effects.events.push(NewEvent::new(tenant, None, "template", &json!({"template": id, "status": status})));
                }
                ChangeValue::TemplateCategory(u) => {
                    let (Some(name), Some(language)) = (u.message_template_name.as_deref(), u.message_template_language.as_deref()) else { return Ok(()) };
                    let new = u.new_category.as_deref().map(str::to_ascii_uppercase);
                    if u.previous_category.is_none() && u.correct_category.is_some() {
                        // An announcement: Meta changes the category in 24 hours. Warn now if it
                        // becomes marketing; the change itself comes with the next update.
                        if u.correct_category.as_deref().map(str::to_ascii_uppercase).as_deref() == Some("MARKETING") {
                            warn_recategorized(tx, tenant, waba, name, language, change.now).await?;
                        }
                        return Ok(());
                    }
                    let (_, before) = store::upsert(
                        tx,
                        tenant,
                        waba,
                        &TemplateFacts {
                            meta_template_id: u.message_template_id.as_deref(),
                            name,
                            language,
                            category: new.as_deref(),
                            parameter_format: None,
                            components: None,
                            status: None,
                            reason: None,
                        },
                        change.now,
                    )
                    .await?;
                    let was_utility = before.as_deref() == Some("UTILITY") || u.previous_category.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("UTILITY"));
                    if was_utility && new.as_deref() == Some("MARKETING") {
                        with_tx!(&mut *tx, |c| sqlx::query(
                            "UPDATE templates SET previous_category = 'UTILITY', category_changed_at = COALESCE(category_changed_at, $4) WHERE waba_id = $1 AND name = $2 AND language = $3"
                        )
                        .bind(waba)
                        .bind(name)
                        .bind(language)
                        .bind(change.now)
                        .execute(c)
                        .await
                        .map(drop))?;
                        warn_recategorized(tx, tenant, waba, name, language, change.now).await?;
                    }
                }
                ChangeValue::TemplateQuality(u) => {
                    let (Some(name), Some(language)) = (u.message_template_name.as_deref(), u.message_template_language.as_deref()) else { return Ok(()) };
                    let (id, _) = store::upsert(
                        tx,
                        tenant,
                        waba,
                        &TemplateFacts { meta_template_id: u.message_template_id.as_deref(), name, language, category: None, parameter_format: None, components: None, status: None, reason: None },
                        change.now,
                    )
                    .await?;
                    with_tx!(&mut *tx, |c| sqlx::query("UPDATE templates SET quality = $2 WHERE id = $1")
                        .bind(id)
                        .bind(u.new_quality_score.as_deref())
                        .execute(c)
                        .await
                        .map(drop))?;
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// Tells every user of the tenant (a notification) that a template is now billed as marketing;
/// support sees the same on its templates page. Once per template and language.
pub async fn warn_recategorized(tx: &mut Tx, tenant: TenantId, waba: &str, name: &str, language: &str, now: i64) -> Result<(), sqlx::Error> {
    let users = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, UserId>("SELECT id FROM users WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(c)
        .await)?;
    let key = format!("tplcat:{waba}:{name}:{language}:MARKETING");
    let actor = format!("{name} ({language})");
    for user in users {
        with_tx!(&mut *tx, |c| sqlx::query(
            "INSERT INTO notifications (tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at)
             VALUES ($1, $2, 'template_category', $3, $4, '@type:template_marketing', '/templates', $5)
             ON CONFLICT (user_id, dedupe_key) WHERE user_id IS NOT NULL DO NOTHING"
        )
        .bind(tenant)
        .bind(user)
        .bind(&key)
        .bind(&actor)
        .bind(now)
        .execute(c)
        .await
        .map(drop))?;
    }
    tracing::warn!(tenant = tenant.0, template = name, language, "template recategorized from utility to marketing");
    Ok(())
}
