//! The Graph API: `/{version}/{node}` and `/{version}/{node}/{edge}`, dispatched by what the
//! node id names (business, WABA, phone number, template, media), with Meta's token checks,
//! fields projection, paging and error bodies.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::control::api::{Fault, ReceivedRequest};
use crate::errors::GraphError;
use crate::world::{Token, World, display_number};
use crate::{control, messages, signup, templates};

/// The whole HTTP surface of the sandbox.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(control::routes())
        .merge(signup::routes())
        .route("/sdk.js", get(signup::sdk_js_default))
        .route("/_media/{id}", get(media_download))
        .route("/{version}/{node}", any(node_handler))
        .route("/{version}/{node}/{edge}", any(edge_handler))
        .with_state(shared)
}

/// One Graph request, parsed.
pub struct Call {
    pub method: Method,
    pub version: String,
    pub node: String,
    pub edge: Option<String>,
    pub query: HashMap<String, String>,
    /// Body parameters (JSON, form or multipart text fields) merged over the query.
    pub params: Value,
    pub raw_body: Bytes,
    pub content_type: String,
    pub bearer: Option<String>,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key)
    }

    pub fn str_param(&self, key: &str) -> Option<String> {
        match self.params.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The endpoint name used by fault injection.
    pub fn endpoint(&self) -> String {
        match &self.edge {
            Some(edge) => edge.clone(),
            None => "node".into(),
        }
    }
}

/// What a handler answers: a body, possibly after a delay (the "answered only after the
/// client's timeout" fault).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub delay: Option<Duration>,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer { status: StatusCode::OK, body, delay: None }
    }
}

async fn node_handler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((version, node)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if node == "sdk.js" {
        return signup::sdk_js(&shared, &version).into_response();
    }
    handle(shared, method, version, node, None, query, headers, body).await
}

async fn edge_handler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    Path((version, node, edge)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(shared, method, version, node, Some(edge), query, headers, body).await
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    shared: Arc<Shared>,
    method: Method,
    version: String,
    node: String,
    edge: Option<String>,
    raw_query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = raw_query
        .as_deref()
        .map(|q| form_pairs(q.as_bytes()).into_iter().collect())
        .unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(|s| s.trim().to_string())
        .or_else(|| query.get("access_token").cloned());
    let mut call = Call {
        method,
        version,
        node,
        edge,
        params: Value::Null,
        query,
        raw_body: body,
        content_type,
        bearer,
    };
    call.params = parse_params(&call);

    let (outage, result) = {
        let mut world = shared.world();
        let outage = world.outage.clone().filter(|o| o.until_ms > world.now_ms());
        let result = if outage.is_some() {
            None
        } else {
            Some(dispatch(&shared, &mut world, &call))
        };
        (outage, result)
    };
    let (status, body, delay) = match (outage, result) {
        (Some(outage), _) => {
            if outage.mode == control::api::OutageMode::Timeout {
                tokio::time::sleep(Duration::from_millis(outage.hang_ms)).await;
            }
            let err = GraphError::oauth(2, None, "Service temporarily unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, err.body(), None)
        }
        (None, Some(Ok(answer))) => (answer.status, answer.body, answer.delay),
        (None, Some(Err(mut err))) => {
            err.fbtrace_id = shared.world().ids.fbtrace_id();
            (err.status, err.body(), None)
        }
        (None, None) => (StatusCode::INTERNAL_SERVER_ERROR, json!({}), None),
    };
    record(&shared, &call, status);
    shared.changed();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = (status, axum::Json(body)).into_response();
    if !status.is_success() {
        response
            .headers_mut()
            .insert("www-authenticate", axum::http::HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_request\""));
    }
    response
}

fn record(shared: &Shared, call: &Call, status: StatusCode) {
    const SECRETS: &[&str] = &["client_secret", "access_token", "code", "input_token"];
    let mut query: Vec<(String, String)> = call
        .query
        .iter()
        .map(|(k, v)| {
            let v = if SECRETS.contains(&k.as_str()) { "<redacted>".to_string() } else { v.clone() };
            (k.clone(), v)
        })
        .collect();
    query.sort();
    let path = match &call.edge {
        Some(edge) => format!("/{}/{}/{}", call.version, call.node, edge),
        None => format!("/{}/{}", call.version, call.node),
    };
    let mut world = shared.world();
    let at_ms = world.now_ms();
    let body = if call.content_type.starts_with("multipart/") {
        json!({"multipart": true})
    } else {
        call.params.clone()
    };
    world.requests.push_back(ReceivedRequest {
        method: call.method.to_string(),
        path,
        query: query.into_iter().collect(),
        body,
        status: status.as_u16(),
        at_ms,
    });
    while world.requests.len() > 5000 {
        world.requests.pop_front();
    }
}

fn parse_params(call: &Call) -> Value {
    let mut params = Map::new();
    for (k, v) in &call.query {
        if k != "access_token" {
            params.insert(k.clone(), Value::String(v.clone()));
        }
    }
    if call.content_type.starts_with("application/json") || (call.content_type.is_empty() && call.raw_body.first() == Some(&b'{')) {
        if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&call.raw_body) {
            params.extend(body);
        }
    } else if call.content_type.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_pairs(&call.raw_body) {
            // Graph accepts JSON-encoded values in form fields.
            let value = serde_json::from_str::<Value>(&v)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .unwrap_or(Value::String(v));
            params.insert(k, value);
        }
    } else if call.content_type.starts_with("multipart/form-data") {
        for part in multipart_parts(&call.content_type, &call.raw_body) {
            if part.filename.is_none() {
                params.insert(part.name, Value::String(String::from_utf8_lossy(&part.data).into_owned()));
            }
        }
    }
    Value::Object(params)
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                match u8::from_str_radix(&String::from_utf8_lossy(&input[i + 1..i + 3]), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One part of a multipart body.
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// A small multipart/form-data reader, enough for Meta's media upload (fields and one file).
pub fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Part> {
    let Some(boundary) = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_string())
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let rest_trimmed = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(header_end) = find(rest_trimmed, b"\r\n\r\n") else { break };
        let headers = String::from_utf8_lossy(&rest_trimmed[..header_end]).into_owned();
        let content = &rest_trimmed[header_end + 4..];
        let Some(end) = find(content, &delimiter) else { break };
        let data = content[..end].strip_suffix(b"\r\n").unwrap_or(&content[..end]).to_vec();
        let mut name = String::new();
        let mut filename = None;
        let mut ctype = None;
        for line in headers.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for attr in line.split(';').skip(1) {
                    let attr = attr.trim();
                    if let Some(v) = attr.strip_prefix("name=") {
                        name = v.trim_matches('"').to_string();
                    } else if let Some(v) = attr.strip_prefix("filename=") {
                        filename = Some(v.trim_matches('"').to_string());
                    }
                }
            } else if lower.starts_with("content-type:") {
                ctype = Some(line["content-type:".len()..].trim().to_string());
            }
        }
        parts.push(Part { name, filename, content_type: ctype, data });
        rest = &content[end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dispatch(shared: &Shared, world: &mut World, call: &Call) -> Result<Answer, GraphError> {
    if !is_version(&call.version) {
        return Err(GraphError::oauth(2500, None, format!("Unknown path components: /{}", call.version)));
    }
    match (call.node.as_str(), call.edge.as_deref()) {
        ("oauth", Some("access_token")) => return signup::exchange(shared, world, call).map(Answer::ok),
        ("debug_token", None) => return signup::debug_token(shared, world, call).map(Answer::ok),
        _ => {}
    }
    let token = authenticate(world, call)?;
    let delay = take_fault(world, call)?;
    let mut answer = route(shared, world, call, &token)?;
    if delay.is_some() {
        answer.delay = delay;
    }
    Ok(answer)
}

fn is_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let mut it = rest.splitn(2, '.');
    matches!((it.next(), it.next()), (Some(a), Some(b)) if !a.is_empty() && !b.is_empty()
        && a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit()))
}

/// Checks the bearer token: unknown, revoked or expired → 190, as Meta answers.
pub fn authenticate(world: &World, call: &Call) -> Result<Token, GraphError> {
    let Some(bearer) = &call.bearer else {
        return Err(GraphError::oauth(104, None, "An access token is required to request this resource."));
    };
    let Some(token) = world.tokens.get(bearer) else {
        return Err(GraphError::token("Invalid OAuth access token - Cannot parse access token", None));
    };
    if token.revoked {
        return Err(GraphError::token(
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
            Some(460),
        ));
    }
    if let Some(expires) = token.expires_ms
        && expires <= world.now_ms()
    {
        return Err(GraphError::token(
            "Error validating access token: Session has expired.",
            Some(463),
        ));
    }
    Ok(token.clone())
}

/// Applies an injected fault for this endpoint, if any: an error, or a delayed answer.
fn take_fault(world: &mut World, call: &Call) -> Result<Option<Duration>, GraphError> {
    let endpoint = call.endpoint();
    let method = call.method.as_str().to_string();
    let Some(index) = world.faults.iter().position(|f: &Fault| {
        (f.endpoint == endpoint || f.endpoint == "any")
            && f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(&method))
            && f.target.as_deref().is_none_or(|t| t == call.node)
    }) else {
        return Ok(None);
    };
    let fault = world.faults[index].clone();
    match fault.remaining {
        Some(1) => {
            world.faults.remove(index);
        }
        Some(n) => world.faults[index].remaining = Some(n.saturating_sub(1)),
        None => {}
    }
    if let Some(code) = fault.code {
        let mut err = match &fault.details {
            Some(details) => GraphError::new(code, details.clone()),
            None => GraphError::code(code),
        };
        if let Some(sub) = fault.subcode {
            err = err.with_subcode(sub);
        }
        if let Some(status) = fault.http_status.and_then(|s| StatusCode::from_u16(s).ok()) {
            err.status = status;
        }
        return Err(err);
    }
    Ok(fault.delay_ms.map(Duration::from_millis))
}

fn route(shared: &Shared, world: &mut World, call: &Call, token: &Token) -> Result<Answer, GraphError> {
    let id = call.node.as_str();
    let method = call.method.as_str();
    if world.numbers.contains_key(id) {
        let waba_id = world.numbers.get(id).map(|n| n.waba_id.clone()).unwrap_or_default();
        ensure_access(token, &waba_id, id, method)?;
        return match (method, call.edge.as_deref()) {
            ("GET", None) => phone_number_fields(shared, world, id, call).map(Answer::ok),
            ("POST", None) => phone_number_update(world, id, call).map(Answer::ok),
            ("POST", Some("register")) => register(world, id, call).map(Answer::ok),
            ("POST", Some("deregister")) => deregister(world, id).map(Answer::ok),
            ("POST", Some("request_code")) => request_code(world, id, call).map(Answer::ok),
            ("POST", Some("verify_code")) => verify_code(world, id, call).map(Answer::ok),
            ("POST", Some("messages")) => messages::send(shared, world, id, call),
            ("POST", Some("media")) => media_upload(world, id, call).map(Answer::ok),
            ("GET", Some("whatsapp_business_profile")) => Ok(Answer::ok(json!({"data": [business_profile(world, id)]}))),
            ("POST", Some("whatsapp_business_profile")) => Ok(Answer::ok(json!({"success": true}))),
            _ => Err(unsupported(id, method)),
        };
    }
    if world.wabas.contains_key(id) {
        ensure_access(token, id, id, method)?;
        return match (method, call.edge.as_deref()) {
            ("GET", None) => waba_fields(world, id, call).map(Answer::ok),
            ("GET", Some("phone_numbers")) => phone_numbers(shared, world, id, call).map(Answer::ok),
            ("GET", Some("subscribed_apps")) => Ok(Answer::ok(subscribed_apps(world, id))),
            ("POST", Some("subscribed_apps")) => subscribe(world, id, call, token).map(Answer::ok),
            ("DELETE", Some("subscribed_apps")) => unsubscribe(world, id, token).map(Answer::ok),
            ("GET", Some("message_templates")) => templates::list(shared, world, id, call).map(Answer::ok),
            ("POST", Some("message_templates")) => templates::create(shared, world, id, call).map(Answer::ok),
            ("DELETE", Some("message_templates")) => templates::delete(world, id, call).map(Answer::ok),
            _ => Err(unsupported(id, method)),
        };
    }
    if let Some(template) = world.templates.get(id) {
        let waba_id = template.waba_id.clone();
        ensure_access(token, &waba_id, id, method)?;
        return match (method, call.edge.as_deref()) {
            ("GET", None) => templates::get(world, id, call).map(Answer::ok),
            ("POST", None) => templates::edit(shared, world, id, call).map(Answer::ok),
            _ => Err(unsupported(id, method)),
        };
    }
    if let Some(business) = world.businesses.get(id) {
        if !token.business_ids.contains(&business.id) {
            return Err(GraphError::unknown_object(id, method));
        }
        return match (method, call.edge.as_deref()) {
            ("GET", None) => {
                let all = json!({
                    "id": business.id,
                    "name": business.name,
                    "verification_status": business.verification_status,
                });
                project(&all, call, &["id", "name"], "Business").map(Answer::ok)
            }
            _ => Err(unsupported(id, method)),
        };
    }
    if let Some(media) = world.live_media(id) {
        let waba_id = world.numbers.get(&media.phone_number_id).map(|n| n.waba_id.clone()).unwrap_or_default();
        ensure_access(token, &waba_id, id, method)?;
        return match (method, call.edge.as_deref()) {
            ("GET", None) => {
                let size = media.hex.len() / 2;
                Ok(Answer::ok(json!({
                    "messaging_product": "whatsapp",
                    // Valid five minutes, like Meta's.
                    "url": format!("{}/_media/{}?mid={}&ext={}", shared.base_url, media.id, media.id, world.now_ms() / 1000 + crate::messages::DIRECT_URL_SECS),
                    "mime_type": media.mime_type,
                    "sha256": media.sha256,
                    "file_size": size,
                    "id": media.id,
                })))
            }
            ("DELETE", None) => {
                world.media.remove(id);
                Ok(Answer::ok(json!({"success": true})))
            }
            _ => Err(unsupported(id, method)),
        };
    }
    Err(GraphError::unknown_object(id, method))
}

fn unsupported(id: &str, method: &str) -> GraphError {
    GraphError::unknown_object(id, method)
}

fn ensure_access(token: &Token, waba_id: &str, id: &str, method: &str) -> Result<(), GraphError> {
    if token.waba_ids.iter().any(|w| w == waba_id) {
        Ok(())
    } else {
        Err(GraphError::unknown_object(id, method))
    }
}

/// Keeps the requested `fields` (plus `id`), or the node's default fields; an unknown field
/// is Meta's error 100.
pub fn project(all: &Value, call: &Call, default: &[&str], node_type: &str) -> Result<Value, GraphError> {
    let requested: Vec<String> = match call.query.get("fields").or(None) {
        Some(fields) => fields.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    };
    let mut out = Map::new();
    for field in &requested {
        match all.get(field) {
            Some(Value::Null) => {}
            Some(v) => {
                out.insert(field.clone(), v.clone());
            }
            None => {
                return Err(GraphError::invalid(format!(
                    "Tried accessing nonexisting field ({field}) on node type ({node_type})"
                )));
            }
        }
    }
    if let Some(id) = all.get("id") {
        out.insert("id".into(), id.clone());
    }
    Ok(Value::Object(out))
}

/// Meta's time format in Graph fields, e.g. `2026-03-01T10:00:00+0000`.
pub fn graph_time(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn phone_number_value(shared: &Shared, world: &World, id: &str) -> Value {
    let Some(n) = world.numbers.get(id) else { return Value::Null };
    let country = crate::world::country_of(&n.number);
    let dial = display_number(&n.number);
    let dial_code = dial.trim_start_matches('+').split(' ').next().unwrap_or("").to_string();
    let mps = n.throughput_mps.unwrap_or(if n.is_on_biz_app { 20 } else { shared.config.default_throughput_mps });
    json!({
        "id": n.id,
        "display_phone_number": dial,
        "verified_name": n.verified_name,
        "quality_rating": if n.quality_rating == "UNKNOWN" { "UNKNOWN" } else { n.quality_rating.as_str() },
        "code_verification_status": n.code_verification_status,
        "name_status": n.name_status,
        "status": n.status,
        "platform_type": if n.status == "CONNECTED" || n.is_on_biz_app { "CLOUD_API" } else { "NOT_APPLICABLE" },
        "is_on_biz_app": n.is_on_biz_app,
        "is_pin_enabled": n.pin.is_some(),
        "throughput": {"level": if mps > 80 { "HIGH" } else if mps < 80 { "NOT_APPLICABLE" } else { "STANDARD" }},
        "whatsapp_business_manager_messaging_limit": "TIER_250",
        "messaging_limit_tier": "TIER_250",
        "account_mode": "LIVE",
        "is_official_business_account": false,
        "country_code": country,
        "country_dial_code": dial_code,
        "last_onboarded_time": graph_time(n.last_onboarded_ms),
        "webhook_configuration": n.webhook_configuration.clone().unwrap_or_else(|| {
            json!({"application": world.webhooks.url.clone().unwrap_or_default()})
        }),
    })
}

fn phone_number_fields(shared: &Shared, world: &World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let all = phone_number_value(shared, world, id);
    project(&all, call, &["id", "display_phone_number", "verified_name", "quality_rating"], "WhatsAppBusinessPhoneNumber")
}

fn phone_numbers(shared: &Shared, world: &World, waba_id: &str, call: &Call) -> Result<Value, GraphError> {
    let mut items = Vec::new();
    for n in world.numbers.values().filter(|n| n.waba_id == waba_id) {
        let all = phone_number_value(shared, world, &n.id);
        items.push(project(
            &all,
            call,
            &["id", "display_phone_number", "verified_name", "quality_rating", "code_verification_status", "name_status"],
            "WhatsAppBusinessPhoneNumber",
        )?);
    }
    Ok(page(shared, call, items, &format!("{waba_id}/phone_numbers")))
}

/// Cursor paging as Graph does it: `limit` (default 25), `after`/`before` cursors, `next`.
pub fn page(shared: &Shared, call: &Call, items: Vec<Value>, path: &str) -> Value {
    let limit: usize = call
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start = call.query.get("after").and_then(|c| decode_cursor(c)).map_or(0, |i| i + 1);
    let end = (start + limit).min(items.len());
    let slice: Vec<Value> = items.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    let mut body = json!({ "data": slice });
    if end > start {
        let mut paging = json!({
            "cursors": {"before": encode_cursor(start), "after": encode_cursor(end - 1)}
        });
        if end < items.len() {
            let mut next = format!("{}/{}/{}?limit={limit}&after={}", shared.base_url, call.version, path, encode_cursor(end - 1));
            if let Some(fields) = call.query.get("fields") {
                next.push_str(&format!("&fields={fields}"));
            }
            paging["next"] = json!(next);
        }
        body["paging"] = paging;
    }
    body
}

fn encode_cursor(i: usize) -> String {
    hex::encode(format!("cursor:{i}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let bytes = hex::decode(c).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("cursor:")?.parse().ok()
}

fn waba_fields(world: &World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(w) = world.wabas.get(id) else { return Err(GraphError::unknown_object(id, "GET")) };
    let business = world.businesses.get(&w.business_id);
    let all = json!({
        "id": w.id,
        "name": w.name,
        "currency": w.currency,
        "timezone_id": w.timezone_id,
        "message_template_namespace": w.message_template_namespace,
        "account_review_status": w.account_review_status,
        "business_verification_status": business.map(|b| b.verification_status.clone()),
        "ownership_type": "CLIENT_OWNED",
        "country": business.map(|_| "DE"),
        "primary_business_location": "DE",
        "marketing_messages_onboarding_status": "NOT_STARTED",
        "on_behalf_of_business_info": business.map(|b| json!({
            "name": b.name, "id": b.id, "status": "APPROVED", "type": "SELF"
        })),
        "owner_business_info": business.map(|b| json!({"name": b.name, "id": b.id})),
    });
    project(&all, call, &["id", "name", "currency", "timezone_id", "message_template_namespace"], "WhatsAppBusinessAccount")
}

fn subscribed_apps(world: &World, waba_id: &str) -> Value {
    let apps: Vec<Value> = world
        .wabas
        .get(waba_id)
        .map(|w| {
            w.subscribed_apps
                .iter()
                .map(|a| {
                    let mut v = json!({
                        "whatsapp_business_api_data": {
                            "id": a.app_id,
                            "link": "https://www.facebook.com/games/?app_id=".to_string() + &a.app_id,
                            "name": "wabridge",
                        }
                    });
                    if let Some(uri) = &a.override_callback_uri {
                        v["override_callback_uri"] = json!(uri);
                    }
                    v
                })
                .collect()
        })
        .unwrap_or_default();
    json!({ "data": apps })
}

fn subscribe(world: &mut World, waba_id: &str, call: &Call, token: &Token) -> Result<Value, GraphError> {
    let override_uri = call.str_param("override_callback_uri");
    if override_uri.is_some() && call.str_param("verify_token").is_none() {
        return Err(GraphError::invalid("The parameter verify_token is required"));
    }
    let Some(w) = world.wabas.get_mut(waba_id) else { return Err(GraphError::unknown_object(waba_id, "POST")) };
    w.subscribed_apps.retain(|a| a.app_id != token.app_id);
    w.subscribed_apps.push(crate::world::SubscribedApp { app_id: token.app_id.clone(), override_callback_uri: override_uri });
    Ok(json!({"success": true}))
}

fn unsubscribe(world: &mut World, waba_id: &str, token: &Token) -> Result<Value, GraphError> {
    if let Some(w) = world.wabas.get_mut(waba_id) {
        w.subscribed_apps.retain(|a| a.app_id != token.app_id);
    }
    Ok(json!({"success": true}))
}

fn is_pin(pin: &str) -> bool {
    pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())
}

const REGISTER_WINDOW_MS: i64 = 72 * 3600 * 1000;

fn register(world: &mut World, id: &str, call: &Call) -> Result<Value, GraphError> {
    if call.str_param("messaging_product").as_deref() != Some("whatsapp") {
        return Err(GraphError::invalid("The parameter messaging_product is required."));
    }
    let Some(pin) = call.str_param("pin") else {
        return Err(GraphError::invalid("The parameter pin is required."));
    };
    let now = world.now_ms();
    let Some(n) = world.numbers.get_mut(id) else { return Err(GraphError::unknown_object(id, "POST")) };
    // Every call counts against the limit, including failed ones.
    n.register_calls.retain(|t| now - *t < REGISTER_WINDOW_MS);
    if n.register_calls.len() >= 10 {
        return Err(GraphError::code(133016));
    }
    n.register_calls.push(now);
    if !is_pin(&pin) {
        return Err(GraphError::invalid("Param pin must be 6 characters long.").with_subcode(2388093));
    }
    if n.is_on_biz_app {
        return Err(GraphError::invalid("This phone number is already registered with the WhatsApp Business app (coexistence) and cannot be registered."));
    }
    if n.code_verification_status != "VERIFIED" {
        return Err(GraphError::code(133006));
    }
    if let Some(existing) = &n.pin
        && existing != &pin
    {
        return Err(GraphError::code(133005));
    }
    n.pin = Some(pin);
    n.status = "CONNECTED".into();
    n.last_onboarded_ms = now;
    Ok(json!({"success": true}))
}

fn deregister(world: &mut World, id: &str) -> Result<Value, GraphError> {
    let now = world.now_ms();
    let Some(n) = world.numbers.get_mut(id) else { return Err(GraphError::unknown_object(id, "POST")) };
    if n.is_on_biz_app {
        return Err(GraphError::invalid("Deregistration is not available for numbers on the WhatsApp Business app."));
    }
    n.register_calls.retain(|t| now - *t < REGISTER_WINDOW_MS);
    if n.register_calls.len() >= 10 {
        return Err(GraphError::code(133016));
    }
    n.register_calls.push(now);
    n.status = "DISCONNECTED".into();
    Ok(json!({"success": true}))
}

fn request_code(world: &mut World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let method = call.str_param("code_method").unwrap_or_default();
    if method != "SMS" && method != "VOICE" {
        return Err(GraphError::invalid("Param code_method must be one of {SMS, VOICE}"));
    }
    if call.str_param("language").is_none() {
        return Err(GraphError::invalid("The parameter language is required."));
    }
    let code = world.ids.digits(6);
    let Some(n) = world.numbers.get_mut(id) else { return Err(GraphError::unknown_object(id, "POST")) };
    if n.code_verification_status == "VERIFIED" {
        return Err(GraphError::code(136024));
    }
    n.pending_code = Some(code);
    Ok(json!({"success": true}))
}

fn verify_code(world: &mut World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(code) = call.str_param("code") else {
        return Err(GraphError::invalid("The parameter code is required."));
    };
    let Some(n) = world.numbers.get_mut(id) else { return Err(GraphError::unknown_object(id, "POST")) };
    if n.code_verification_status == "VERIFIED" {
        return Err(GraphError::code(136024));
    }
    if n.pending_code.as_deref() != Some(code.as_str()) {
        return Err(GraphError::code(136025));
    }
    n.pending_code = None;
    n.code_verification_status = "VERIFIED".into();
    Ok(json!({"success": true}))
}

fn phone_number_update(world: &mut World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(n) = world.numbers.get_mut(id) else { return Err(GraphError::unknown_object(id, "POST")) };
    if let Some(pin) = call.str_param("pin") {
        if !is_pin(&pin) {
            return Err(GraphError::invalid("Param pin must be 6 characters long."));
        }
        n.pin = Some(pin);
        return Ok(json!({"success": true}));
    }
    if let Some(config) = call.param("webhook_configuration") {
        n.webhook_configuration = Some(config.clone());
        return Ok(json!({"success": true}));
    }
    Err(GraphError::invalid("No supported parameter was given."))
}

fn business_profile(world: &World, id: &str) -> Value {
    let name = world.numbers.get(id).map(|n| n.verified_name.clone()).unwrap_or_default();
    json!({
        "messaging_product": "whatsapp",
        "about": name,
        "address": "",
        "description": "",
        "email": "",
        "websites": [],
        "vertical": "OTHER",
    })
}

fn media_upload(world: &mut World, phone_number_id: &str, call: &Call) -> Result<Value, GraphError> {
    let parts = multipart_parts(&call.content_type, &call.raw_body);
    if call.str_param("messaging_product").as_deref() != Some("whatsapp") {
        return Err(GraphError::invalid("The parameter messaging_product is required."));
    }
    let Some(file) = parts.into_iter().find(|p| p.name == "file") else {
        return Err(GraphError::invalid("The parameter file is required."));
    };
    let mime_type = call
        .str_param("type")
        .or(file.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into());
    use sha2::Digest;
    let sha = sha2::Sha256::digest(&file.data);
    let id = world.ids.object_id();
    let now = world.now_ms();
    world.media.insert(
        id.clone(),
        crate::world::Media {
            id: id.clone(),
            phone_number_id: phone_number_id.to_string(),
            mime_type,
            sha256: hex::encode(sha),
            hex: hex::encode(&file.data),
            created_ms: now,
            expires_ms: Some(now + crate::world::UPLOADED_MEDIA_MS),
        },
    );
    Ok(json!({"id": id}))
}

/// The media download URL; like Meta's, it needs the bearer token.
async fn media_download(State(shared): State<Arc<Shared>>, Path(id): Path<String>, Query(query): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let world = shared.world();
    // A URL with an expiry (`ext`, Unix seconds) is refused after it, as Meta's are.
    if query.get("ext").and_then(|e| e.parse::<i64>().ok()).is_some_and(|ext| world.now_ms() / 1000 >= ext) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let Some(token) = world.tokens.get(bearer).filter(|t| !t.revoked) else {
        return GraphError::token("Invalid OAuth access token - Cannot parse access token", None).into_response();
    };
    let Some(media) = world.live_media(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let allowed = world
        .numbers
        .get(&media.phone_number_id)
        .is_some_and(|n| token.waba_ids.contains(&n.waba_id));
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    let bytes = hex::decode(&media.hex).unwrap_or_default();
    ([("content-type", media.mime_type.clone())], bytes).into_response()
}
