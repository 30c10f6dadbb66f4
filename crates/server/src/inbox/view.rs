//! How stored messages are shown: one view per message, built from the JSON Meta sent (or we
//! sent), with reactions attached to the message they react to.

use std::collections::BTreeMap;

use serde_json::Value;
use wabridge_cloud_api::error::Lang as MetaLang;

use super::store::MessageRow;
use super::window::WINDOW_CLOSED_CODE;
use crate::web::i18n::Lang;
use crate::web::when::When;

/// A piece of message text: plain, or a link.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Whether this is a URL.
    pub link: bool,
    /// The text.
    pub text: String,
}

/// Media shown inline, playable or downloadable.
#[derive(Clone, Debug)]
pub struct MediaView {
    /// image, video, audio, sticker or document.
    pub kind: String,
    /// Our URL serving it.
    pub url: String,
    /// File name of a document.
    pub filename: Option<String>,
    /// Voice note.
    pub voice: bool,
    /// Meta no longer had it when it was fetched.
    pub gone: bool,
    /// Deleted after the retention period (`WABRIDGE_MEDIA_RETENTION_DAYS`).
    pub expired: bool,
}

/// A shared location.
#[derive(Clone, Debug)]
pub struct LocationView {
    /// Place name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Map link.
    pub map_url: String,
}

/// A shared contact card.
#[derive(Clone, Debug)]
pub struct ContactView {
    /// Name.
    pub name: String,
    /// Phone numbers.
    pub phones: Vec<String>,
}

/// One message as the conversation page shows it.
#[derive(Clone, Debug)]
pub struct MessageView {
    /// Id.
    pub id: i64,
    /// Meta's id.
    pub wamid: Option<String>,
    /// Sent by the business.
    pub outgoing: bool,
    /// Type.
    pub kind: String,
    /// Text or caption.
    pub text: Vec<Segment>,
    /// Media.
    pub media: Option<MediaView>,
    /// Location.
    pub location: Option<LocationView>,
    /// Contact cards.
    pub contacts: Vec<ContactView>,
    /// The option a customer chose (buttons, lists, template quick replies).
    pub choice: Option<String>,
    /// Template name of an outbound template.
    pub template: Option<String>,
    /// Reactions on this message.
    pub reactions: Vec<String>,
    /// The quoted message's text.
    pub quoted: Option<String>,
    /// Marked forwarded by WhatsApp.
    pub forwarded: bool,
    /// An explanation (unsupported types, unknown content).
    pub notice: Option<String>,
    /// Status (outbound: queued … read, failed; inbound: received).
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Meta's time of the message.
    pub time: When,
}

/// Splits text into plain parts and links.
pub fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut plain = String::new();
    for (i, word) in text.split(' ').enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let is_link = (word.starts_with("https://") || word.starts_with("http://")) && word.len() > 8;
        if is_link {
            plain.push_str(sep);
            if !plain.is_empty() {
                out.push(Segment { link: false, text: std::mem::take(&mut plain) });
            }
            out.push(Segment { link: true, text: word.to_owned() });
        } else {
            plain.push_str(sep);
            plain.push_str(word);
        }
    }
    if !plain.is_empty() {
        out.push(Segment { link: false, text: plain });
    }
    out
}

fn meta_lang(lang: Lang) -> MetaLang {
    match lang {
        Lang::De => MetaLang::De,
        Lang::En => MetaLang::En,
    }
}

/// The explanation of Meta's error `code` for a user.
pub fn explain(code: i64, lang: Lang) -> String {
    if code == WINDOW_CLOSED_CODE {
        return lang.t("inbox.window_closed_refused").to_owned();
    }
    wabridge_cloud_api::error::explain(code, meta_lang(lang)).to_owned()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
}

fn one(row: &MessageRow, lang: Lang) -> MessageView {
    let p: Value = serde_json::from_str(&row.payload).unwrap_or_default();
    let kind = row.kind.as_str();
    let mut v = MessageView {
        id: row.id,
        wamid: row.wamid.clone(),
        outgoing: row.direction == "out",
        kind: row.kind.clone(),
        text: Vec::new(),
        media: None,
        location: None,
        contacts: Vec::new(),
        choice: None,
        template: None,
        reactions: Vec::new(),
        quoted: None,
        forwarded: p["context"]["forwarded"].as_bool().unwrap_or(false) || p["context"]["frequently_forwarded"].as_bool().unwrap_or(false),
        notice: None,
        status: row.status.clone(),
        error: row.error_code.map(|c| explain(c, lang)),
        time: When(row.meta_at),
    };
    match kind {
        "text" => v.text = segments(p["text"]["body"].as_str().unwrap_or_default()),
        "image" | "video" | "audio" | "sticker" | "document" => {
            let m = &p[kind];
            if let Some(caption) = s(&m["caption"]) {
                v.text = segments(&caption);
            }
            if m["id"].is_string() {
                v.media = Some(MediaView {
                    kind: kind.to_owned(),
                    url: format!("/inbox/media/{}", row.id),
                    filename: s(&m["filename"]),
                    voice: m["voice"].as_bool().unwrap_or(false),
                    gone: row.media_state.as_deref() == Some("failed"),
                    expired: row.media_state.as_deref() == Some("expired"),
                });
            } else if let Some(link) = s(&m["link"]) {
                v.text.push(Segment { link: true, text: link });
            }
        }
        "location" => {
            let l = &p["location"];
            let (lat, lon) = (l["latitude"].as_f64().unwrap_or_default(), l["longitude"].as_f64().unwrap_or_default());
            v.location = Some(LocationView {
                name: s(&l["name"]).unwrap_or_default(),
                address: s(&l["address"]).unwrap_or_default(),
                map_url: format!("https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=17/{lat}/{lon}"),
            });
        }
        "contacts" => {
            for c in p["contacts"].as_array().into_iter().flatten() {
                v.contacts.push(ContactView {
                    name: s(&c["name"]["formatted_name"]).or_else(|| s(&c["name"]["first_name"])).unwrap_or_default(),
                    phones: c["phones"].as_array().into_iter().flatten().filter_map(|ph| s(&ph["phone"])).collect(),
                });
            }
        }
        "interactive" => {
            let i = &p["interactive"];
            v.choice = s(&i["button_reply"]["title"]).or_else(|| s(&i["list_reply"]["title"])).or_else(|| s(&i["nfm_reply"]["body"]));
        }
        "button" => v.choice = s(&p["button"]["text"]).or_else(|| s(&p["button"]["payload"])),
        "template" => {
            // What the customer read: the template's text with its values, as it was sent.
            v.template = s(&p["template"]["name"]);
            v.text = segments(&row.body);
        }
        "order" => v.notice = Some(lang.t("message_type.order").to_owned()),
        "request_welcome" => v.notice = Some(lang.t("inbox.request_welcome").to_owned()),
        _ => {
            let code = p["errors"][0]["code"].as_i64().unwrap_or(131_051);
            let detail = s(&p["errors"][0]["error_data"]["details"]).or_else(|| s(&p["errors"][0]["title"]));
            v.notice = Some(match detail {
                Some(d) => format!("{} ({d})", explain(code, lang)),
                None => explain(code, lang),
            });
        }
    }
    v
}

/// Views of a conversation's messages, oldest first; reactions are attached to their target.
/// `context` holds, for a page of a long conversation, the messages beyond it that the page
/// needs: reactions to its messages and the messages it quotes.
pub fn build(rows: &[MessageRow], context: &[MessageRow], lang: Lang) -> Vec<MessageView> {
    let mut views: Vec<MessageView> = rows.iter().filter(|r| r.kind != "reaction").map(|r| one(r, lang)).collect();
    // Each side (the customer, the business) has at most one reaction on a message: a later
    // one (by Meta's time, then by the order the webhooks came in) replaces its earlier one,
    // an empty one removes it.
    let mut reactions: Vec<&MessageRow> = rows.iter().chain(context.iter().filter(|c| rows.iter().all(|r| r.id != c.id))).filter(|r| r.kind == "reaction").collect();
    reactions.sort_by_key(|r| (r.meta_at, r.arrival, r.id));
    let mut sides: BTreeMap<usize, [Option<String>; 2]> = BTreeMap::new();
    for r in reactions {
        let p: Value = serde_json::from_str(&r.payload).unwrap_or_default();
        let target = p["reaction"]["message_id"].as_str().unwrap_or_default();
        let emoji = p["reaction"]["emoji"].as_str().unwrap_or_default();
        let Some(t) = views.iter().position(|v| v.wamid.as_deref() == Some(target)) else { continue };
        sides.entry(t).or_default()[usize::from(r.direction == "out")] = Some(emoji.to_owned()).filter(|e| !e.is_empty());
    }
    for (t, [customer, business]) in sides {
        views[t].reactions = customer.into_iter().chain(business).collect();
    }
    let quoted: Vec<(usize, String)> = rows
        .iter()
        .filter(|r| r.kind != "reaction")
        .enumerate()
        .filter_map(|(i, r)| {
            let target = r.reply_to_wamid.as_deref()?;
            let q = rows.iter().chain(context).find(|o| o.kind != "reaction" && o.wamid.as_deref() == Some(target))?;
            let text = if q.body.is_empty() { lang.t(&format!("message_type.{}", q.kind)).to_owned() } else { q.body.clone() };
            Some((i, text))
        })
        .collect();
    for (i, text) in quoted {
        views[i].quoted = Some(text);
    }
    views
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_in_text() {
        let s = segments("Termin hier: https://example.com/a?b=1 danke");
        assert_eq!(s.len(), 3);
        assert!(!s[0].link && s[1].link && !s[2].link);
        assert_eq!(s[1].text, "https://example.com/a?b=1");
        assert_eq!(s[0].text, "Termin hier: ");
        assert_eq!(s[2].text, " danke");
    }

    fn row(id: i64, kind: &str, payload: serde_json::Value, meta_at: i64, arrival: Option<i64>) -> MessageRow {
        MessageRow {
            id,
            direction: "in".into(),
            wamid: Some(format!("wamid.{id}")),
            kind: kind.into(),
            body: String::new(),
            payload: payload.to_string(),
            reply_to_wamid: None,
            status: "received".into(),
            error_code: None,
            meta_at,
            media_state: None,
            arrival,
        }
    }

    #[test]
    fn of_two_reactions_in_one_second_the_one_that_came_later_counts() {
        let text = row(1, "text", serde_json::json!({"type": "text", "text": {"body": "Hallo"}}), 1_000, Some(1));
        let react = |emoji: &str| serde_json::json!({"type": "reaction", "reaction": {"message_id": "wamid.1", "emoji": emoji}});
        // ❤️ came in the later webhook but was applied first (another processor): a lower id.
        let heart = row(2, "reaction", react("❤️"), 5_000, Some(20));
        let thumb = row(3, "reaction", react("👍"), 5_000, Some(10));
        let views = build(&[text.clone(), heart, thumb.clone()], &[], Lang::De);
        assert_eq!(views[0].reactions, ["❤️"]);
        // A later second wins whatever the order of arrival.
        let later = row(2, "reaction", react("❤️"), 6_000, Some(5));
        assert_eq!(build(&[text, later, thumb], &[], Lang::De)[0].reactions, ["❤️"]);
    }
}
