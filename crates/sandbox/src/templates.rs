//! Message templates: create, list, get, edit, delete, Meta's review with its webhook, and the
//! checks on a template send (132001, 132000, 132012, 132015, 132016).

use serde_json::{Value, json};

use crate::Shared;
use crate::errors::GraphError;
use crate::graph::{Call, page, project};
use crate::world::{ReviewKind, Template, World};

const CATEGORIES: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];

pub fn create(shared: &Shared, world: &mut World, waba_id: &str, call: &Call) -> Result<Value, GraphError> {
    let name = call.str_param("name").unwrap_or_default();
    if name.is_empty() || name.len() > 512 || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(GraphError::invalid("Invalid parameter: name must be lowercase alphanumeric characters and underscores, at most 512 characters.")
            .with_subcode(2388042));
    }
    let category = call.str_param("category").unwrap_or_default().to_ascii_uppercase();
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(GraphError::invalid("Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}"));
    }
    let Some(language) = call.str_param("language") else {
        return Err(GraphError::invalid("The parameter language is required."));
    };
    let parameter_format = call.str_param("parameter_format").unwrap_or_else(|| "POSITIONAL".into()).to_ascii_uppercase();
    if parameter_format != "POSITIONAL" && parameter_format != "NAMED" {
        return Err(GraphError::invalid("Param parameter_format must be one of {NAMED, POSITIONAL}"));
    }
    let components = call.param("components").cloned().unwrap_or(json!([]));
    check_components(&components, &parameter_format, &category)?;
    if world.templates.values().any(|t| t.waba_id == waba_id && t.name == name && t.language == language) {
        return Err(GraphError::invalid(format!(
            "Content in this language already exists: there is already {language} content for this template ({name})."
        ))
        .with_subcode(2388024));
    }
    let recent = world
        .templates
        .values()
        .filter(|t| t.waba_id == waba_id && world.now_ms() - t.created_ms < 3600 * 1000)
        .count();
    if recent >= 100 {
        return Err(GraphError::code(80007));
    }
    let id = world.ids.object_id();
    let now = world.now_ms();
    world.templates.insert(
        id.clone(),
        Template {
            id: id.clone(),
            waba_id: waba_id.to_string(),
            name,
            language,
            category: category.clone(),
            status: "PENDING".into(),
            parameter_format,
            components,
            quality_score: "UNKNOWN".into(),
            rejected_reason: "NONE".into(),
            created_ms: now,
        },
    );
    crate::reviews::start(shared, world, ReviewKind::Template, &id);
    // An immediate review may already have decided.
    let status = world.templates.get(&id).map(|t| t.status.clone()).unwrap_or_else(|| "PENDING".into());
    Ok(json!({"id": id, "status": status, "category": category}))
}

/// Placeholders of a text: `{{1}}` or `{{name}}`.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

fn check_components(components: &Value, format: &str, category: &str) -> Result<(), GraphError> {
    let Some(list) = components.as_array() else {
        return Err(GraphError::invalid("Param components must be an array."));
    };
    let body = list.iter().find(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("BODY")));
    if body.is_none() && category != "AUTHENTICATION" {
        return Err(GraphError::invalid("Template must have a BODY component.").with_subcode(2388043));
    }
    for component in list {
        let Some(text) = component.get("text").and_then(Value::as_str) else { continue };
        for p in placeholders(text) {
            let positional = p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty();
            let named = !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()) && !positional;
            let ok = if format == "NAMED" { named } else { positional };
            if !ok {
                return Err(GraphError::invalid(format!(
                    "Invalid parameter: placeholder {{{{{p}}}}} does not match parameter_format {format}."
                ))
                .with_subcode(2388299));
            }
        }
    }
    Ok(())
}

/// A template as the Graph API shows it.
pub fn template_json(t: &Template) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "parameter_format": t.parameter_format,
        "components": t.components,
        "quality_score": {"score": t.quality_score},
        "rejected_reason": t.rejected_reason,
        "previous_category": Value::Null,
    })
}

const DEFAULT_FIELDS: &[&str] = &["name", "parameter_format", "components", "language", "status", "category", "id"];

pub fn list(shared: &Shared, world: &World, waba_id: &str, call: &Call) -> Result<Value, GraphError> {
    let mut items = Vec::new();
    for t in world.templates.values().filter(|t| t.waba_id == waba_id) {
        if call.query.get("name").is_some_and(|n| !t.name.contains(n.as_str())) {
            continue;
        }
        if call.query.get("status").is_some_and(|s| !s.eq_ignore_ascii_case(&t.status)) {
            continue;
        }
        if call.query.get("language").is_some_and(|l| l != &t.language) {
            continue;
        }
        if call.query.get("category").is_some_and(|c| !c.eq_ignore_ascii_case(&t.category)) {
            continue;
        }
        items.push(project(&template_json(t), call, DEFAULT_FIELDS, "WhatsAppBusinessHSM")?);
    }
    Ok(page(shared, call, items, &format!("{waba_id}/message_templates")))
}

pub fn get(world: &World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(t) = world.templates.get(id) else { return Err(GraphError::unknown_object(id, "GET")) };
    project(&template_json(t), call, DEFAULT_FIELDS, "WhatsAppBusinessHSM")
}

pub fn edit(shared: &Shared, world: &mut World, id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(t) = world.templates.get(id).cloned() else { return Err(GraphError::unknown_object(id, "POST")) };
    let category = call.str_param("category").map(|c| c.to_ascii_uppercase()).unwrap_or(t.category.clone());
    if !CATEGORIES.contains(&category.as_str()) {
        return Err(GraphError::invalid("Param category must be one of {AUTHENTICATION, MARKETING, UTILITY}"));
    }
    let components = call.param("components").cloned().unwrap_or(t.components.clone());
    check_components(&components, &t.parameter_format, &category)?;
    if let Some(t) = world.templates.get_mut(id) {
        t.category = category;
        t.components = components;
        t.status = "PENDING".into();
    }
    crate::reviews::start(shared, world, ReviewKind::Template, id);
    Ok(json!({"success": true}))
}

pub fn delete(world: &mut World, waba_id: &str, call: &Call) -> Result<Value, GraphError> {
    let Some(name) = call.str_param("name") else {
        return Err(GraphError::invalid("The parameter name is required."));
    };
    let hsm_id = call.str_param("hsm_id");
    let ids: Vec<String> = world
        .templates
        .values()
        .filter(|t| t.waba_id == waba_id && t.name == name && hsm_id.as_ref().is_none_or(|h| h == &t.id))
        .map(|t| t.id.clone())
        .collect();
    if ids.is_empty() {
        return Err(GraphError::invalid(format!("Message template \"{name}\" not found")).with_subcode(2593002));
    }
    for id in ids {
        if let Some(t) = world.templates.remove(&id) {
            status_webhook(world, &t, "DELETED", "NONE", None);
        }
    }
    Ok(json!({"success": true}))
}

/// Queues `message_template_status_update` for a template.
pub fn status_webhook(world: &mut World, t: &Template, event: &str, reason: &str, extra: Option<(&str, Value)>) {
    let mut value = json!({
        "event": event,
        "message_template_id": t.id.parse::<u64>().unwrap_or_default(),
        "message_template_name": t.name,
        "message_template_language": t.language,
        "reason": reason,
        "message_template_category": t.category,
    });
    if let Some((key, extra)) = extra {
        value[key] = extra;
    }
    let waba_id = t.waba_id.clone();
    world.enqueue(&waba_id, "message_template_status_update", value, true);
}

/// Decides a template review: status, webhook.
pub fn decide(world: &mut World, id: &str, approved: bool, reason: Option<&str>) {
    let Some(t) = world.templates.get_mut(id) else { return };
    if approved {
        t.status = "APPROVED".into();
        t.rejected_reason = "NONE".into();
        t.quality_score = "UNKNOWN".into();
    } else {
        t.status = "REJECTED".into();
        t.rejected_reason = reason.unwrap_or("INVALID_FORMAT").to_string();
    }
    let t = t.clone();
    if approved {
        status_webhook(world, &t, "APPROVED", "NONE", None);
    } else {
        let info = json!({
            "reason": "The template content does not meet WhatsApp's policies (sandbox review).",
            "recommendation": "Review the template content and submit it again."
        });
        status_webhook(world, &t, "REJECTED", &t.rejected_reason, Some(("rejection_info", info)));
    }
}

/// Checks a template send and returns (category, template id).
pub fn validate_send(world: &World, waba_id: &str, object: &Value) -> Result<(String, String), GraphError> {
    let Some(name) = object.get("name").and_then(Value::as_str) else {
        return Err(GraphError::new(131008, "The parameter template['name'] is required."));
    };
    let Some(code) = object.pointer("/language/code").and_then(Value::as_str) else {
        return Err(GraphError::new(131008, "The parameter template['language']['code'] is required."));
    };
    let Some(t) = world.templates.values().find(|t| t.waba_id == waba_id && t.name == name && t.language == code) else {
        return Err(GraphError::new(132001, format!("template name ({name}) does not exist in {code}")));
    };
    match t.status.as_str() {
        "APPROVED" => {}
        "PAUSED" => return Err(GraphError::code(132015)),
        "DISABLED" => return Err(GraphError::code(132016)),
        _ => return Err(GraphError::new(132001, format!("template name ({name}) is not approved in {code}"))),
    }
    let given = object.get("components").and_then(Value::as_array).cloned().unwrap_or_default();
    for kind in ["HEADER", "BODY"] {
        let expected: Vec<String> = t
            .components
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c.get("type").and_then(Value::as_str).is_some_and(|ty| ty.eq_ignore_ascii_case(kind)))
            .flat_map(|c| c.get("text").and_then(Value::as_str).map(placeholders).unwrap_or_default())
            .collect();
        let media_header = kind == "HEADER"
            && t.components.as_array().into_iter().flatten().any(|c| {
                c.get("type").and_then(Value::as_str).is_some_and(|ty| ty.eq_ignore_ascii_case("HEADER"))
                    && c.get("format").and_then(Value::as_str).is_some_and(|f| matches!(f, "IMAGE" | "VIDEO" | "DOCUMENT" | "LOCATION"))
            });
        let params: Vec<Value> = given
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str).is_some_and(|ty| ty.eq_ignore_ascii_case(kind)))
            .flat_map(|c| c.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default())
            .collect();
        let expected_count = if media_header { 1 } else { expected.len() };
        if params.len() != expected_count {
            return Err(GraphError::new(
                132000,
                format!("{} localizable_params ({}) does not match the expected number of params ({expected_count})", kind.to_lowercase(), params.len()),
            ));
        }
        if media_header {
            continue;
        }
        for (i, p) in params.iter().enumerate() {
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
            let value_ok = match ty {
                "text" => p.get("text").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty()),
                "currency" => p.pointer("/currency/fallback_value").is_some() && p.pointer("/currency/amount_1000").is_some(),
                "date_time" => p.pointer("/date_time/fallback_value").is_some(),
                _ => false,
            };
            let name_ok = match (t.parameter_format.as_str(), p.get("parameter_name").and_then(Value::as_str)) {
                ("NAMED", Some(n)) => expected.iter().any(|e| e == n),
                ("NAMED", None) => false,
                (_, Some(_)) => false,
                (_, None) => true,
            };
            if !value_ok || !name_ok {
                return Err(GraphError::new(
                    132012,
                    format!("Parameter {} of {} does not match the format of the template ({})", i + 1, kind.to_lowercase(), t.parameter_format),
                ));
            }
        }
        if t.parameter_format == "NAMED" {
            let mut names: Vec<&str> = params.iter().filter_map(|p| p.get("parameter_name").and_then(Value::as_str)).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() != expected.len() {
                return Err(GraphError::new(132000, format!("{} parameters do not match the template's named parameters", kind.to_lowercase())));
            }
        }
    }
    Ok((t.category.clone(), t.id.clone()))
}
