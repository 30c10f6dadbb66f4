//! Sending (`POST /{phone_number_id}/messages`) with Meta's rules — registration, throughput,
//! pair rate limit, the 24-hour customer service window, content limits, templates — and the
//! status webhooks that follow; and messages from simulated customers.

use serde_json::{Value, json};

use crate::Shared;
use crate::clock::secs_string;
use crate::errors::GraphError;
use crate::graph::{Answer, Call};
use crate::pricing;
use crate::world::{Action, Outbound, StatusRecord, World, digits};

pub const WINDOW_MS: i64 = 24 * 3600 * 1000;
const FEP_MS: i64 = 72 * 3600 * 1000;
const MAX_TEXT: usize = 4096;

/// Handles a send or a mark-as-read.
pub fn send(shared: &Shared, world: &mut World, pnid: &str, call: &Call) -> Result<Answer, GraphError> {
    if call.str_param("messaging_product").as_deref() != Some("whatsapp") {
        return Err(GraphError::invalid("The parameter messaging_product is required."));
    }
    let Some(number) = world.numbers.get(pnid).cloned() else {
        return Err(GraphError::unknown_object(pnid, "POST"));
    };
    if number.status != "CONNECTED" && !number.is_on_biz_app {
        return Err(GraphError::code(133010));
    }
    if call.str_param("status").as_deref() == Some("read") {
        let Some(message_id) = call.str_param("message_id") else {
            return Err(GraphError::new(131008, "The parameter message_id is required."));
        };
        if !world.inbound.iter().any(|m| m.wamid == message_id && m.phone_number_id == pnid) {
            return Err(GraphError::new(131009, "Invalid message_id"));
        }
        return Ok(Answer::ok(json!({"success": true})));
    }

    let now = world.now_ms();
    let mps = number
        .throughput_mps
        .unwrap_or(if number.is_on_biz_app { 20 } else { shared.config.default_throughput_mps });
    {
        let sends = world.sends_per_number.entry(pnid.to_string()).or_default();
        while sends.front().is_some_and(|t| now - *t >= 1000) {
            sends.pop_front();
        }
        if sends.len() >= mps as usize {
            return Err(GraphError::code(130429));
        }
    }

    let (input, wa_id, to_bsuid) = recipient(world, pnid, call)?;
    if wa_id == number.number {
        return Err(GraphError::code(131021));
    }
    let kind = call.str_param("type").unwrap_or_else(|| "text".into());
    let template = validate_content(world, &number.waba_id, &kind, call)?;

    let in_window = world
        .thread_ref(pnid, &wa_id)
        .and_then(|t| t.last_inbound_ms)
        .is_some_and(|t| now - t < WINDOW_MS);
    let mut fail_with = None;
    if template.is_none() && !in_window {
        if world.window_refusal_sync {
            return Err(GraphError::code(131047));
        }
        fail_with = Some(131047);
    }

    // Pair rate limit: a token bucket per (number, customer).
    let limit = shared.config.pair_limit;
    let interval_ms = crate::world::as_ms(limit.interval).max(1);
    {
        let key = format!("{pnid}/{wa_id}");
        let bucket = world.pair_buckets.entry(key).or_insert((f64::from(limit.burst), now));
        let refill = (now - bucket.1) as f64 / interval_ms as f64;
        bucket.0 = (bucket.0 + refill).min(f64::from(limit.burst));
        bucket.1 = now;
        if bucket.0 < 1.0 {
            return Err(GraphError::code(131056));
        }
        bucket.0 -= 1.0;
    }
    world.sends_per_number.entry(pnid.to_string()).or_default().push_back(now);

    if !world.customer(&wa_id).reachable {
        fail_with = fail_with.or(Some(131026));
    }
    let wamid = world.ids.wamid();
    let thread = world.thread(pnid, &wa_id);
    if !to_bsuid {
        thread.last_outbound_ms = Some(now);
    }
    // A reply within 24 hours of an ad referral opens a 72-hour free entry point window.
    if thread.referral_ms.is_some_and(|r| now - r < WINDOW_MS) && thread.fep_until_ms.is_none_or(|f| f < now) {
        thread.fep_until_ms = Some(now + FEP_MS);
    }
    let in_fep = thread.fep_until_ms.is_some_and(|f| f > now);
    let category = template.as_ref().map(|t| t.0.clone());
    let price = pricing::price(category.as_deref(), in_window, in_fep, now, shared.config.paid_service_from);
    world.outbound.push(Outbound {
        wamid: wamid.clone(),
        phone_number_id: pnid.to_string(),
        waba_id: number.waba_id.clone(),
        input: input.clone(),
        wa_id: wa_id.clone(),
        to_bsuid,
        r#type: kind.clone(),
        request: call.params.clone(),
        template_category: category,
        biz_opaque_callback_data: call.str_param("biz_opaque_callback_data"),
        created_ms: now,
        pricing_type: price.r#type.to_string(),
        pricing_category: price.category,
        fep: in_fep,
        statuses: Vec::new(),
    });
    match fail_with {
        Some(code) => world.schedule(0, Action::Fail { wamid: wamid.clone(), code }),
        None => {
            apply_status(world, &wamid, "sent", None);
            if let Some(after) = world.delivered_after_ms {
                world.schedule(after, Action::Deliver(wamid.clone()));
            }
        }
    }

    let contact = if to_bsuid {
        json!({"input": input, "user_id": input})
    } else {
        json!({"input": input, "wa_id": wa_id})
    };
    let mut message = json!({"id": wamid});
    if template.is_some() {
        message["message_status"] = json!("accepted");
    }
    Ok(Answer::ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [contact],
        "messages": [message],
    })))
}

fn recipient(world: &mut World, pnid: &str, call: &Call) -> Result<(String, String, bool), GraphError> {
    // `to` takes precedence over `recipient` when both are given, as Meta documents.
    if let Some(to) = call.str_param("to") {
        let wa_id = digits(&to);
        if wa_id.len() < 6 {
            return Err(GraphError::new(131009, "Parameter value is not valid: to"));
        }
        world.customer(&wa_id);
        return Ok((to, wa_id, false));
    }
    if let Some(bsuid) = call.str_param("recipient") {
        return match world.customer_by_bsuid(pnid, &bsuid) {
            Some(wa_id) => Ok((bsuid, wa_id, true)),
            None => Err(GraphError::new(131009, "Parameter value is not valid: recipient")),
        };
    }
    Err(GraphError::new(131008, "The parameter to is required."))
}

/// Checks the message object of the given type; for templates returns (category, id).
fn validate_content(world: &World, waba_id: &str, kind: &str, call: &Call) -> Result<Option<(String, String)>, GraphError> {
    let object = call.param(kind).cloned().unwrap_or(Value::Null);
    match kind {
        "text" => {
            let Some(body) = object.get("body").and_then(Value::as_str) else {
                return Err(GraphError::new(131008, "The parameter text['body'] is required."));
            };
            if body.chars().count() > MAX_TEXT {
                return Err(GraphError::new(100, format!("Param text['body'] must be at most {MAX_TEXT} characters long.")));
            }
            if body.trim().is_empty() {
                return Err(GraphError::new(131009, "Parameter value is not valid: text['body'] is empty"));
            }
            Ok(None)
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            let id = object.get("id").and_then(Value::as_str);
            let link = object.get("link").and_then(Value::as_str);
            match (id, link) {
                (Some(id), _) if world.live_media(id).is_none() => {
                    Err(GraphError::new(131053, "Media upload error: unknown media id"))
                }
                (Some(_), _) => Ok(None),
                (None, Some(link)) if link.starts_with("http://") || link.starts_with("https://") => Ok(None),
                _ => Err(GraphError::new(131008, format!("The parameter {kind}['id'] or {kind}['link'] is required."))),
            }
        }
        "location" => {
            if object.get("latitude").is_none() || object.get("longitude").is_none() {
                return Err(GraphError::new(131008, "The parameters location['latitude'] and location['longitude'] are required."));
            }
            Ok(None)
        }
        "contacts" => {
            let ok = call
                .param("contacts")
                .and_then(Value::as_array)
                .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.pointer("/name/formatted_name").is_some()));
            if ok { Ok(None) } else { Err(GraphError::new(131008, "The parameter contacts[0]['name']['formatted_name'] is required.")) }
        }
        "interactive" => validate_interactive(&object).map(|()| None),
        "reaction" => {
            if object.get("message_id").and_then(Value::as_str).is_none() {
                return Err(GraphError::new(131008, "The parameter reaction['message_id'] is required."));
            }
            Ok(None)
        }
        "template" => crate::templates::validate_send(world, waba_id, &object).map(Some),
        other => Err(GraphError::new(131051, format!("Unsupported message type: {other}"))),
    }
}

fn validate_interactive(object: &Value) -> Result<(), GraphError> {
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if object.pointer("/body/text").and_then(Value::as_str).is_some_and(|t| t.chars().count() > 1024) {
        return Err(GraphError::new(131009, "interactive['body']['text'] must be at most 1024 characters long."));
    }
    match kind {
        "button" => {
            let buttons = object.pointer("/action/buttons").and_then(Value::as_array).cloned().unwrap_or_default();
            if buttons.is_empty() || buttons.len() > 3 {
                return Err(GraphError::new(131009, "interactive['action']['buttons'] must have between 1 and 3 buttons."));
            }
            if buttons.iter().any(|b| b.pointer("/reply/title").and_then(Value::as_str).is_none_or(|t| t.chars().count() > 20)) {
                return Err(GraphError::new(131009, "Button title length invalid. Should be at most 20 characters."));
            }
            Ok(())
        }
        "list" => {
            let sections = object.pointer("/action/sections").and_then(Value::as_array).cloned().unwrap_or_default();
            if sections.is_empty() || sections.len() > 10 {
                return Err(GraphError::new(131009, "interactive['action']['sections'] must have between 1 and 10 sections."));
            }
            Ok(())
        }
        "cta_url" | "flow" | "product" | "product_list" | "location_request_message" | "call_permission_request" | "address_message" => Ok(()),
        _ => Err(GraphError::new(131009, "Parameter value is not valid: interactive['type']")),
    }
}

/// Records a status for an outbound message and queues its webhook, unless it would go
/// backwards (a delivered message is not delivered again; nothing follows `failed`).
pub fn apply_status(world: &mut World, wamid: &str, status: &str, error_code: Option<i64>) -> bool {
    let now = world.now_ms();
    let Some(index) = world.outbound.iter().position(|m| m.wamid == wamid) else {
        return false;
    };
    let rank = |s: &str| match s {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" => 4,
        _ => 0,
    };
    let current = world.outbound[index].statuses.iter().map(|s| rank(&s.status)).max().unwrap_or(0);
    if current >= rank(status) || current == 4 {
        return false;
    }
    let had_billing_status = world.outbound[index]
        .statuses
        .iter()
        .any(|s| s.status == "delivered" || s.status == "read");
    world.outbound[index].statuses.push(StatusRecord { status: status.to_string(), at_ms: now, error_code });
    let message = world.outbound[index].clone();
    let value = status_value(world, &message, status, now, error_code, !had_billing_status);
    world.enqueue(&message.waba_id, "messages", value, false);
    if status == "delivered"
        && let Some(after) = world.read_after_ms
    {
        world.schedule(after, Action::Read(wamid.to_string()));
    }
    true
}

/// The `messages` change value carrying one status, in Meta's shape.
fn status_value(world: &World, m: &Outbound, status: &str, at_ms: i64, error_code: Option<i64>, first_billing: bool) -> Value {
    let number = world.numbers.get(&m.phone_number_id).map(|n| n.number.clone()).unwrap_or_default();
    let bsuid = world.bsuid(&m.phone_number_id, &m.wa_id);
    let customer = world.customers.get(&m.wa_id);
    let mut s = json!({
        "id": m.wamid,
        "status": status,
        "timestamp": secs_string(at_ms),
    });
    if !m.to_bsuid {
        s["recipient_id"] = json!(m.wa_id);
    }
    if status != "failed" || m.to_bsuid {
        s["recipient_user_id"] = json!(bsuid);
    }
    if let Some(data) = &m.biz_opaque_callback_data {
        s["biz_opaque_callback_data"] = json!(data);
    }
    let priced = status == "sent" || ((status == "delivered" || status == "read") && first_billing);
    if status != "failed" {
        if m.fep {
            let mut conversation = json!({"id": hex::encode(&m.wamid.as_bytes()[..16.min(m.wamid.len())]), "origin": {"type": "referral_conversion"}});
            if status == "sent" {
                conversation["expiration_timestamp"] = json!(secs_string(at_ms + FEP_MS));
            }
            s["conversation"] = conversation;
        }
        if priced {
            s["pricing"] = pricing::pricing_json(&m.pricing_type, &m.pricing_category);
        }
    }
    if let Some(code) = error_code {
        s["errors"] = json!([GraphError::webhook_error(code)]);
    }
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number, "phone_number_id": m.phone_number_id},
        "statuses": [s],
    });
    if status != "failed" {
        let mut contact = json!({"user_id": bsuid});
        if !m.to_bsuid || customer.is_some_and(|c| !c.hide_phone) {
            contact["wa_id"] = json!(m.wa_id);
        }
        if status != "sent"
            && let Some(username) = customer.and_then(|c| c.username.clone())
        {
            contact["profile"] = json!({"username": username});
        }
        value["contacts"] = json!([contact]);
    }
    value
}

/// A message from a simulated customer: records it, opens or restarts the window and queues
/// the webhook. `message` carries `type` and the type's object; missing media fields are filled.
pub fn customer_writes(
    world: &mut World,
    base_url: &str,
    req: &crate::control::api::CustomerMessage,
) -> Result<crate::control::api::InboundReceipt, String> {
    let Some(number) = world.numbers.get(&req.phone_number_id).cloned() else {
        return Err(format!("unknown phone_number_id {}", req.phone_number_id));
    };
    let wa_id = digits(&req.from);
    if wa_id.len() < 6 {
        return Err("`from` must be a phone number with country code".into());
    }
    let now = world.now_ms();
    let at_ms = req.at.map_or(now, |secs| secs * 1000);
    {
        let customer = world.customer(&wa_id);
        if let Some(name) = &req.name {
            customer.name = name.clone();
        }
        if let Some(username) = &req.username {
            customer.username = Some(username.clone());
        }
        if let Some(hide) = req.hide_phone {
            customer.hide_phone = hide;
        }
    }
    let customer = world.customer(&wa_id).clone();
    let bsuid = world.bsuid(&req.phone_number_id, &wa_id);
    let wamid = world.ids.wamid();
    let kind = req.r#type.clone();
    let mut object = shaped_content(&kind, req.content.clone(), req.reply_to.as_deref());
    if matches!(kind.as_str(), "image" | "audio" | "video" | "document" | "sticker") {
        let media_id = inbound_media(world, &req.phone_number_id, &kind, &object);
        let mime = world.media.get(&media_id).map(|m| (m.mime_type.clone(), m.sha256.clone()));
        if let (Some(obj), Some((mime, sha))) = (object.as_object_mut(), mime) {
            obj.insert("id".into(), json!(media_id));
            obj.entry("mime_type").or_insert(json!(mime));
            // Webhooks carry the hash base64-encoded (e.g. `"sha256": "4654+8g="`).
            obj.insert("sha256".into(), json!(base64(&hex::decode(&sha).unwrap_or_default())));
            if kind == "audio" {
                obj.entry("voice").or_insert(json!(false));
            }
            if kind == "sticker" {
                obj.entry("animated").or_insert(json!(false));
            }
            if kind == "document" {
                obj.entry("filename").or_insert(json!("dokument.pdf"));
            }
            if req.media_url == Some(true) {
                obj.insert("url".into(), json!(direct_media_url(base_url, &media_id, at_ms / 1000 + DIRECT_URL_SECS)));
            }
        }
    }
    let thread = world.thread_ref(&req.phone_number_id, &wa_id).cloned().unwrap_or_default();
    // Meta withholds a username user's phone unless the business messaged it within 30 days.
    let phone_known = thread.last_outbound_ms.is_some_and(|t| now - t < 30 * 24 * 3600 * 1000);
    let show_phone = !(customer.hide_phone && customer.username.is_some()) || phone_known;
    let mut message = json!({
        "id": wamid,
        "timestamp": secs_string(at_ms),
        "type": kind,
    });
    if show_phone {
        message["from"] = json!(wa_id);
    }
    message["from_user_id"] = json!(bsuid);
    if kind != "request_welcome" && kind != "unsupported" {
        message[kind.as_str()] = object;
    }
    if kind == "unsupported" {
        message["unsupported"] = json!({"type": req.content.as_ref().and_then(|c| c.get("type")).cloned().unwrap_or(json!("unknown"))});
        message["errors"] = json!([{
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}
        }]);
    }
    if let Some(context) = &req.context {
        message["context"] = context.clone();
    } else if let Some(reply_to) = req.reply_to.as_ref().filter(|_| kind != "reaction") {
        message["context"] = json!({"from": number.number, "id": reply_to});
    }
    if let Some(referral) = &req.referral {
        message["referral"] = referral.clone();
    }
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number.number, "phone_number_id": number.id},
    });
    if kind != "system" {
        let mut profile = json!({"name": customer.name});
        if let Some(username) = &customer.username {
            profile["username"] = json!(username);
        }
        let mut contact = json!({"profile": profile});
        if show_phone {
            contact["wa_id"] = json!(wa_id);
        }
        contact["user_id"] = json!(bsuid);
        value["contacts"] = json!([contact]);
    }
    value["messages"] = json!([message]);
    let message_copy = world_message_copy(&value);
    world.enqueue(&number.waba_id, "messages", value, false);
    let opens_window = kind != "system";
    let thread = world.thread(&req.phone_number_id, &wa_id);
    if opens_window {
        thread.last_inbound_ms = Some(thread.last_inbound_ms.map_or(at_ms, |t| t.max(at_ms)));
    }
    if req.referral.is_some() {
        thread.referral_ms = Some(at_ms);
    }
    world.inbound.push(crate::world::Inbound {
        wamid: wamid.clone(),
        phone_number_id: req.phone_number_id.clone(),
        wa_id: wa_id.clone(),
        r#type: kind,
        at_ms,
        message: message_copy,
    });
    Ok(crate::control::api::InboundReceipt { wamid, wa_id, user_id: bsuid, timestamp: secs_string(at_ms) })
}

/// A customer message's content as Meta shapes it, from what the control API was given: a
/// reaction names the message it reacts to in `reaction.message_id` (`reply_to` goes there,
/// not into a `context`), contacts are an array of cards (a sample card when none is given),
/// a text and a location without content get sample ones.
fn shaped_content(kind: &str, content: Option<Value>, reply_to: Option<&str>) -> Value {
    match (kind, content) {
        ("reaction", content) => {
            let mut reaction = content.filter(Value::is_object).unwrap_or_else(|| json!({"emoji": "👍"}));
            if let (Some(obj), Some(id)) = (reaction.as_object_mut(), reply_to) {
                obj.entry("message_id").or_insert(json!(id));
            }
            reaction
        }
        ("contacts", Some(Value::Array(cards))) if !cards.is_empty() => Value::Array(cards),
        ("contacts", Some(card @ Value::Object(_))) if card.as_object().is_some_and(|o| !o.is_empty()) => json!([card]),
        ("contacts", _) => json!([{
            "name": {"formatted_name": "Max Mustermann", "first_name": "Max", "last_name": "Mustermann"},
            "phones": [{"phone": "+49 151 23456789", "type": "CELL", "wa_id": "4915123456789"}]
        }]),
        ("text", None) => json!({"body": "Hallo!"}),
        ("location", None) => json!({"latitude": 52.520008, "longitude": 13.404954, "name": "Alexanderplatz", "address": "10178 Berlin"}),
        (_, content) => content.unwrap_or(json!({})),
    }
}

fn world_message_copy(value: &Value) -> Value {
    value.pointer("/messages/0").cloned().unwrap_or(Value::Null)
}

/// How long a download URL lives (Meta's: five minutes).
pub const DIRECT_URL_SECS: i64 = 300;

/// A download URL for a media object, valid until `ext` (Unix seconds), shaped like Meta's
/// (`…/?mid=<id>&source=webhook&ext=<expiry>`); it needs the bearer token like Meta's.
pub fn direct_media_url(base_url: &str, media_id: &str, ext: i64) -> String {
    format!("{base_url}/_media/{media_id}?mid={media_id}&source=webhook&ext={ext}")
}

/// Stores the file of an inbound media message (one of the samples, when its type is one the
/// sandbox makes) and returns its id.
fn inbound_media(world: &mut World, pnid: &str, kind: &str, object: &Value) -> String {
    let mime = object.get("mime_type").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| {
        match kind {
            "image" => "image/png",
            "audio" => "audio/ogg; codecs=opus",
            "video" => "video/mp4",
            "document" => "application/pdf",
            _ => "image/webp",
        }
        .to_string()
    });
    // Real files, so that a browser shows and plays what the app serves; a type the sandbox
    // cannot make (an MP3, a Word file) gets bytes that only say what they stand for.
    let essence = mime.split(';').next().unwrap_or_default().trim();
    let bytes = match (kind, essence) {
        ("image", "image/webp") | ("sticker", _) => crate::samples::sticker(),
        ("image", _) => crate::samples::picture(),
        ("audio", "audio/ogg") => crate::samples::voice_note(),
        ("video", "video/mp4") => crate::samples::video(),
        ("document", "application/pdf") => crate::samples::document(),
        _ => format!("sandbox {kind} media ({mime})").into_bytes(),
    };
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let id = world.ids.object_id();
    let now = world.now_ms();
    world.media.insert(
        id.clone(),
        crate::world::Media { id: id.clone(), phone_number_id: pnid.to_string(), mime_type: mime, sha256: sha, hex: hex::encode(bytes), created_ms: now, expires_ms: Some(now + crate::world::INBOUND_MEDIA_MS) },
    );
    id
}

/// Standard base64 with padding, for the `sha256` of inbound media.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
