//! Meta's reviews — business verification, WABA review, display name, templates — pending for
//! a configured delay or until commanded, then decided (approved unless a rejection was planned)
//! and announced by the webhook Meta sends for it (none for business verification: Meta has
//! none, the app polls). Also runs the timed events: statuses and review decisions.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::Shared;
use crate::config::Delay;
use crate::control::api::PlannedOutcome;
use crate::world::{Action, Review, ReviewKind, World, as_ms};

/// Opens a review for `target_id`, decided now, later or on command per the configured delay.
pub fn start(shared: &Shared, world: &mut World, kind: ReviewKind, target_id: &str) {
    let delays = shared.config.delays;
    let delay = match kind {
        ReviewKind::BusinessVerification => delays.business_verification,
        ReviewKind::WabaReview => delays.waba_review,
        ReviewKind::DisplayName => delays.display_name_review,
        ReviewKind::Template => delays.template_review,
    };
    world.reviews.retain(|_, r| !(r.kind == kind && r.target_id == target_id));
    let id = world.ids.object_id();
    let now = world.now_ms();
    let due_ms = match delay {
        Delay::Immediate => Some(now),
        Delay::After(d) => Some(now + as_ms(d)),
        Delay::Manual => None,
    };
    world.reviews.insert(id.clone(), Review { id: id.clone(), kind, target_id: target_id.to_string(), due_ms, created_ms: now });
    match delay {
        Delay::Immediate => {
            complete(world, &id, None);
        }
        Delay::After(d) => world.schedule(as_ms(d), Action::Review(id)),
        Delay::Manual => {}
    }
}

/// Takes the planned outcome for a review, if one was set through the control API.
fn planned(world: &mut World, kind: ReviewKind, target_id: &str) -> Option<PlannedOutcome> {
    let index = world
        .planned
        .iter()
        .position(|p| p.kind == kind && p.target_id.as_deref().is_none_or(|t| t == target_id))?;
    Some(world.planned.remove(index))
}

/// Decides a review: the given outcome, else a planned one, else approval.
pub fn complete(world: &mut World, review_id: &str, outcome: Option<PlannedOutcome>) -> bool {
    let Some(review) = world.reviews.remove(review_id) else { return false };
    let outcome = outcome.or_else(|| planned(world, review.kind, &review.target_id));
    let approved = outcome.as_ref().is_none_or(|o| o.approve);
    let reason = outcome.as_ref().and_then(|o| o.reason.clone());
    let target = review.target_id.as_str();
    match review.kind {
        ReviewKind::BusinessVerification => {
            if let Some(b) = world.businesses.get_mut(target) {
                b.verification_status = if approved { "verified" } else { "rejected" }.into();
            }
        }
        ReviewKind::WabaReview => {
            let decision = if approved { "APPROVED" } else { "REJECTED" };
            if let Some(w) = world.wabas.get_mut(target) {
                w.account_review_status = decision.into();
            }
            world.enqueue(target, "account_review_update", json!({"decision": decision}), true);
        }
        ReviewKind::DisplayName => {
            let Some(n) = world.numbers.get_mut(target) else { return true };
            n.name_status = if approved { "APPROVED" } else { "DECLINED" }.into();
            let value = json!({
                "display_phone_number": n.number,
                "decision": if approved { "APPROVED" } else { "REJECTED" },
                "requested_verified_name": n.verified_name,
                "rejection_reason": if approved { serde_json::Value::Null } else { json!(reason.clone().unwrap_or_else(|| "NAME_FORMAT_UNACCEPTABLE".into())) },
            });
            let waba_id = n.waba_id.clone();
            world.enqueue(&waba_id, "phone_number_name_update", value, true);
        }
        ReviewKind::Template => crate::templates::decide(world, target, approved, reason.as_deref()),
    }
    true
}

/// Runs due timed events until stopped.
pub async fn scheduler(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = run_due(&shared);
        tokio::select! {
            () = shared.schedule_wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Runs every event that is due and says how long to sleep until the next one.
pub fn run_due(shared: &Shared) -> Duration {
    let mut world = shared.world();
    let mut ran = false;
    loop {
        let now = world.now_ms();
        let Some(index) = world
            .schedule
            .iter()
            .enumerate()
            .filter(|(_, s)| s.due_ms <= now)
            .min_by_key(|(_, s)| s.due_ms)
            .map(|(i, _)| i)
        else {
            break;
        };
        let event = world.schedule.remove(index);
        ran = true;
        match event.action {
            Action::Deliver(wamid) => {
                crate::messages::apply_status(&mut world, &wamid, "delivered", None);
            }
            Action::Read(wamid) => {
                crate::messages::apply_status(&mut world, &wamid, "read", None);
            }
            Action::Fail { wamid, code } => {
                crate::messages::apply_status(&mut world, &wamid, "failed", Some(code));
            }
            Action::Review(id) => {
                complete(&mut world, &id, None);
            }
        }
    }
    let now = world.now_ms();
    let next = world.schedule.iter().map(|s| s.due_ms).min();
    drop(world);
    if ran {
        shared.save_wake.notify_one();
        shared.webhook_wake.notify_one();
    }
    match next {
        Some(due) => Duration::from_millis(u64::try_from((due - now).max(1)).unwrap_or(1)),
        None => Duration::from_secs(3600),
    }
}
