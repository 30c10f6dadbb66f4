//! The OpenAPI 3.1 document of `/api/v1`, written by hand with `serde_json` (nothing is
//! generated or downloaded at build time), and the operations the reference page lists.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// The document.
pub fn document() -> Value {
    let errors = |mut v: Value| {
        v["400"] = error_response("Bad input (`bad_request`, `bad_limit`, `bad_month`, `bad_idempotency_key`)");
        v["401"] = error_response("Missing or unknown key (`unauthorized`)");
        v["404"] = error_response("Not found, or not this tenant's (`not_found`)");
        v
    };
    let idem = json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 200},
                      "description": "Repeating a request with the same key returns the first send (HTTP 200, `created: false`) instead of sending again."});
    let target = json!({
        "conversation_id": {"type": "integer", "description": "An existing conversation"},
        "to": {"type": "string", "description": "A phone number with country code (new customers); used when no conversation_id is given"}
    });
    let sent = json!({"$ref": "#/components/schemas/Sent"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "wabridge API", "version": "1",
                 "description": "The host application's API: send booking confirmations and texts over the tenant's WhatsApp number, read conversations, onboarding and costs. Authenticate with `Authorization: Bearer <API key>` (created by the tenant's owner under API settings). Errors are `{\"error\": {\"code\", \"message\"}}`. Event callbacks are POSTed to the URL the tenant configures, signed `X-Wabridge-Signature: sha256=<hex HMAC-SHA256(secret, \"<X-Wabridge-Timestamp>.<body>\")>`, retried with backoff: `message.received`, `message.status`, `onboarding.changed`."},
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {
                "tenantKey": {"type": "http", "scheme": "bearer", "description": "A tenant's API key (`wbk_…`)"},
                "operatorKey": {"type": "http", "scheme": "bearer", "description": "The operator key (`WABRIDGE_OPERATOR_API_KEY`)"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "Sent": {"type": "object", "properties": {
                    "message_id": {"type": "integer"}, "outbox_id": {"type": "integer"}, "conversation_id": {"type": "integer"},
                    "status": {"type": "string", "enum": ["queued"]}, "created": {"type": "boolean"},
                    "cost_preview": {"type": ["object", "null"], "properties": {"category": {"type": "string"}, "market": {"type": ["string", "null"]}, "inside_window": {"type": "boolean"}, "amount": {"type": ["string", "null"], "description": "EUR; null when no rate is known"}, "known": {"type": "boolean"}}}}},
                "Message": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "conversation_id": {"type": "integer"}, "direction": {"type": "string", "enum": ["in", "out"]}, "wamid": {"type": ["string", "null"]},
                    "type": {"type": "string"}, "text": {"type": "string"}, "status": {"type": "string", "enum": ["queued", "accepted", "unknown", "sent", "delivered", "read", "failed", "received"]},
                    "error_code": {"type": ["integer", "null"]}, "timestamp": {"type": "integer", "description": "Unix ms"},
                    "cost": {"type": ["object", "null"], "properties": {"category": {"type": "string"}, "pricing_type": {"type": "string"}, "amount": {"type": ["string", "null"]}, "currency": {"type": "string"}, "known": {"type": "boolean"}, "flagged": {"type": "boolean"}, "day": {"type": "string"}}}}}
            }
        },
        "paths": {
            "/api/v1/messages/template": {"post": {
                "summary": "Send a template (e.g. the booking confirmation)", "operationId": "sendTemplate", "security": [{"tenantKey": []}], "parameters": [idem],
                "description": "Only approved templates can be sent; paused, disabled or pending ones answer 409 `template_not_sendable`. Parameters by name (`customer_name`) or position (`1`).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["template", "language"],
                    "properties": {"template": {"type": "string", "example": "booking_confirmation"}, "language": {"type": "string", "example": "de"},
                                   "parameters": {"type": "object", "additionalProperties": {"type": "string"}, "example": {"customer_name": "Anna", "service": "Haarschnitt", "date": "12.03.2026", "time": "14:30", "business_name": "Salon Beispiel"}},
                                   "conversation_id": target["conversation_id"], "to": target["to"]}}}}},
                "responses": errors(json!({"202": ok("Queued", sent.clone()), "200": ok("An earlier send with the same Idempotency-Key", sent.clone()),
                    "409": error_response("`template_not_sendable` or `not_connected`"), "422": error_response("`template_value_missing`, `bad_phone`, `recipient_missing`")}))}},
            "/api/v1/messages/text": {"post": {
                "summary": "Send a text inside the 24-hour window", "operationId": "sendText", "security": [{"tenantKey": []}], "parameters": [idem],
                "description": "Refused with 409 `window_closed` when the customer has not written in the last 24 hours: send a template instead.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string", "maxLength": 4096}, "conversation_id": target["conversation_id"], "to": target["to"]}}}}},
                "responses": errors(json!({"202": ok("Queued", sent.clone()), "200": ok("An earlier send with the same Idempotency-Key", sent),
                    "409": error_response("`window_closed` or `not_connected`"), "422": error_response("`bad_text`")}))}},
            "/api/v1/messages/{id}": {"get": {
                "summary": "A message's status and cost", "operationId": "getMessage", "security": [{"tenantKey": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": errors(json!({"200": ok("The message", json!({"$ref": "#/components/schemas/Message"}))}))}},
            "/api/v1/conversations": {"get": {
                "summary": "Conversations, newest first", "operationId": "listConversations", "security": [{"tenantKey": []}],
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 30}},
                               {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "`next_before` of the previous page"},
                               {"name": "before_id", "in": "query", "schema": {"type": "integer"}, "description": "`next_before_id` of the previous page (with `before`: conversations of the same instant are neither skipped nor repeated)"}],
                "responses": errors(json!({"200": ok("A page", json!({"type": "object", "properties": {"data": {"type": "array"}, "next_before": {"type": ["integer", "null"]}, "next_before_id": {"type": ["integer", "null"]}}}))}))}},
            "/api/v1/conversations/{id}/messages": {"get": {
                "summary": "Messages of a conversation, newest first", "operationId": "listMessages", "security": [{"tenantKey": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}},
                               {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 30}},
                               {"name": "before", "in": "query", "schema": {"type": "integer"}, "description": "`next_before` of the previous page (a message id)"}],
                "responses": errors(json!({"200": ok("A page", json!({"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}, "next_before": {"type": ["integer", "null"]}}}))}))}},
            "/api/v1/templates": {"get": {
                "summary": "The tenant's templates and whether they can be sent", "operationId": "listTemplates", "security": [{"tenantKey": []}],
                "responses": errors(json!({"200": ok("Templates", json!({"type": "object"}))}))}},
            "/api/v1/onboarding": {"get": {
                "summary": "The WhatsApp connection of the tenant", "operationId": "getOnboarding", "security": [{"tenantKey": []}],
                "responses": errors(json!({"200": ok("Status", json!({"type": "object", "properties": {
                    "status": {"type": "string", "enum": ["not_connected", "pending", "connected"], "description": "Whether a number is connected"},
                    "state": {"type": "string", "enum": ["not_connected", "pending", "connected", "failed", "disconnected", "needs_reauth", "partner_removed", "disabled"],
                              "description": "What the API settings page shows: connected only once every checklist item is done, failed while self-service is locked after two attempts, or the state of a connection that stopped working"},
                    "numbers": {"type": "array"},
                    "checklist": {"type": "array", "description": "The four onboarding items: item, state (pending, done, failed), detail, changed_at (Unix ms)"}}}))}))}},
            "/api/v1/costs": {"get": {
                "summary": "Costs of a month by category and day (EUR)", "operationId": "getCosts", "security": [{"tenantKey": []}],
                "parameters": [{"name": "month", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "description": "Default: this month"}],
                "responses": errors(json!({"200": ok("The month", json!({"type": "object", "properties": {"total": {"type": "string"}, "unknown_amounts": {"type": "integer", "description": "Messages whose price nobody knows; the total is a lower bound then"}, "by_category": {"type": "array"}, "by_day": {"type": "array"}}}))}))}},
            "/api/v1/tenants": {"post": {
                "summary": "Create a tenant (operator)", "operationId": "createTenant", "security": [{"operatorKey": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
                "responses": errors(json!({"201": ok("Created", json!({"type": "object", "properties": {"id": {"type": "integer"}}}))}))}},
            "/api/v1/tenants/{id}/users": {"post": {
                "summary": "Create an owner or agent of a tenant (operator)", "operationId": "createUser", "security": [{"operatorKey": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["email", "role"], "properties": {"email": {"type": "string"}, "display_name": {"type": "string"}, "role": {"type": "string", "enum": ["owner", "agent"]}}}}}},
                "responses": errors(json!({"201": ok("Created", json!({"type": "object", "properties": {"id": {"type": "integer"}}})), "409": error_response("`duplicate_user`")}))}},
            "/api/v1/users/{id}/sign-in-links": {"post": {
                "summary": "A one-time sign-in link for a user (operator)", "operationId": "createSignInLink", "security": [{"operatorKey": []}],
                "description": "Valid for 15 minutes and once: opening it signs the user in, so that the host application's users reach wabridge without a second password.",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "responses": errors(json!({"201": ok("The link", json!({"type": "object", "properties": {"url": {"type": "string"}, "expires_at": {"type": "integer"}}}))}))}}
        }
    })
}

/// One operation for the reference page.
pub struct Operation {
    /// `GET`, `POST`.
    pub method: String,
    /// Path.
    pub path: String,
    /// Element id on the reference page.
    pub anchor: String,
    /// Summary.
    pub summary: String,
    /// Description.
    pub description: String,
    /// `tenantKey` or `operatorKey`.
    pub auth: String,
    /// Parameters: name, where, description.
    pub parameters: Vec<(String, String, String)>,
    /// Request body schema, pretty JSON.
    pub body: Option<String>,
    /// Responses: status and description.
    pub responses: Vec<(String, String)>,
}

/// The operations of a document, in path order.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            out.push(Operation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                anchor: format!("op-{method}{}", path.replace(['/', '{', '}'], "-")),
                summary: op["summary"].as_str().unwrap_or_default().to_owned(),
                description: op["description"].as_str().unwrap_or_default().to_owned(),
                auth: op["security"][0].as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default(),
                parameters: op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (p["name"].as_str().unwrap_or_default().to_owned(), p["in"].as_str().unwrap_or_default().to_owned(), p["description"].as_str().unwrap_or_default().to_owned()))
                    .collect(),
                body: op["requestBody"]["content"]["application/json"]["schema"].as_object().and_then(|s| serde_json::to_string_pretty(s).ok()),
                responses: op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(code, r)| (code.clone(), r["description"].as_str().unwrap_or_default().to_owned()))
                    .collect(),
            });
        }
    }
    out
}
