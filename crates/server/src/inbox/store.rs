//! Queries of the inbox: customers, conversations, messages, and how sends and statuses
//! change them.

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use crate::accounts::TenantId;
use crate::live::{self, LiveHub, NewEvent};
use crate::outbox::OutboxId;
use crate::store::{Db, Engine, Tx, Val, insert_ids, keep_prepared, keys_by_tenant, param_list, select_in, statement_chunks, value_rows};
use crate::{with_pool, with_tx};

/// Order of statuses; a message's status only ever moves up (failed is final).
pub fn status_rank(status: &str) -> i64 {
    match status {
        "queued" => 0,
        "unknown" | "accepted" => 1,
        "sent" => 2,
        "delivered" => 3,
        "read" | "played" => 4,
        "failed" => 9,
        // Inbound messages: received, then read by the business.
        "received" => 0,
        _ => 0,
    }
}

/// Who a message names: the keys and profile Meta sent for a customer.
#[derive(Clone, Copy)]
pub struct CustomerKey<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// Business-scoped user id (`user_id`).
    pub bsuid: Option<&'a str>,
    /// Phone number (`wa_id`).
    pub phone: Option<&'a str>,
    /// Profile name.
    pub name: Option<&'a str>,
    /// WhatsApp username.
    pub username: Option<&'a str>,
}

/// Finds or creates the customer, merging the BSUID record and the phone record when a
/// message reveals that they are the same person. `None` when the message names neither.
pub async fn upsert_customer(
    tx: &mut Tx,
    tenant: TenantId,
    bsuid: Option<&str>,
    phone: Option<&str>,
    name: Option<&str>,
    username: Option<&str>,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let key = CustomerKey { tenant, bsuid, phone, name, username };
    Ok(resolve_customers(tx, &[key], now).await?.pop().flatten())
}

/// A customer record as the resolver holds it: loaded (`id`) or still to be inserted.
#[derive(sqlx::FromRow)]
struct CustomerRec {
    id: Option<i64>,
    tenant_id: TenantId,
    bsuid: Option<String>,
    phone: Option<String>,
    name: Option<String>,
    username: Option<String>,
    #[sqlx(skip)]
    dirty: bool,
    /// Merged into another record (the index).
    #[sqlx(skip)]
    merged_into: Option<usize>,
}

/// [`upsert_customer`] for many keys at once, in order, as if called for each: two look-ups
/// per tenant, one multi-row insert for the new customers, an update only for a changed
/// profile and a merge only when two records turn out to be one person.
pub async fn resolve_customers(tx: &mut Tx, keys: &[CustomerKey<'_>], now: i64) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let clean = |s: Option<&str>| s.filter(|v| !v.is_empty()).map(str::to_owned);
    let mut recs: Vec<CustomerRec> = Vec::new();
    let mut by_bsuid: HashMap<(TenantId, String), usize> = HashMap::new();
    let mut by_phone: HashMap<(TenantId, String), usize> = HashMap::new();

    // Every stored record any key names.
    let mut loaded = HashSet::new();
    for column in ["bsuid", "phone"] {
        let select = "SELECT id, tenant_id, bsuid, phone, name, username FROM customers WHERE tenant_id = $1";
        let wanted = keys.iter().filter_map(|k| clean(if column == "bsuid" { k.bsuid } else { k.phone }).map(|v| (k.tenant, v)));
        for (_, rec) in select_in::<CustomerRec, _>(tx, select, column, wanted).await? {
            if loaded.insert(rec.id) {
                index_rec(&mut by_bsuid, &mut by_phone, &rec, recs.len());
                recs.push(rec);
            }
        }
    }

    // Each key in order, against what is known so far (earlier keys included).
    let mut resolved = Vec::with_capacity(keys.len());
    for k in keys {
        let (bsuid, phone) = (clean(k.bsuid), clean(k.phone));
        let name = k.name.filter(|n| !n.trim().is_empty()).map(str::to_owned);
        let username = clean(k.username);
        if bsuid.is_none() && phone.is_none() {
            resolved.push(None);
            continue;
        }
        let a = bsuid.as_ref().and_then(|b| by_bsuid.get(&(k.tenant, b.clone())).copied());
        let b = phone.as_ref().and_then(|p| by_phone.get(&(k.tenant, p.clone())).copied());
        let at = match (a, b) {
            (Some(a), Some(b)) if a != b => merge_recs(tx, &mut recs, &mut by_bsuid, &mut by_phone, a, b, now).await?,
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                let rec = CustomerRec {
                    id: None,
                    tenant_id: k.tenant,
                    bsuid: None,
                    phone: None,
                    name: None,
                    username: None,
                    dirty: false,
                    merged_into: None,
                };
                recs.push(rec);
                recs.len() - 1
            }
        };
        // The message's values win over stored ones (COALESCE(new, old)); a replaced key no
        // longer finds this record.
        let rec = &mut recs[at];
        for (map, old, new) in [(&mut by_bsuid, &rec.bsuid, &bsuid), (&mut by_phone, &rec.phone, &phone)] {
            if let (Some(old), Some(new)) = (old, new)
                && old != new
            {
                map.remove(&(k.tenant, old.clone()));
            }
        }
        for (slot, new) in [(&mut rec.bsuid, bsuid), (&mut rec.phone, phone), (&mut rec.name, name), (&mut rec.username, username)] {
            if new.is_some() && *slot != new {
                *slot = new;
                rec.dirty = true;
            }
        }
        index_rec(&mut by_bsuid, &mut by_phone, &recs[at], at);
        resolved.push(Some(at));
    }

    // Changed profiles first (they may free a key a new record takes), then the new records.
    for rec in recs.iter_mut().filter(|r| r.id.is_some() && r.dirty && r.merged_into.is_none()) {
        update_rec(tx, rec, now).await?;
    }
    let fresh: Vec<usize> = (0..recs.len()).filter(|&i| recs[i].id.is_none() && recs[i].merged_into.is_none()).collect();
    match tx {
        Tx::Sqlite(_) => {
            let ids = insert_ids(tx, CUSTOMERS_INSERT, 7, &customer_values(&recs, &fresh, now)).await?;
            for (&i, id) in fresh.iter().zip(ids) {
                recs[i].id = Some(id);
            }
        }
        Tx::Postgres(_) => insert_customers_racing(tx, &mut recs, &fresh, now).await?,
    }
    resolved
        .into_iter()
        .map(|at| {
            let Some(mut at) = at else { return Ok(None) };
            while let Some(next) = recs[at].merged_into {
                at = next;
            }
            recs[at].id.map(Some).ok_or(sqlx::Error::RowNotFound)
        })
        .collect()
}

const CUSTOMERS_INSERT: &str = "INSERT INTO customers (tenant_id, bsuid, phone, name, username, created_at, updated_at)";

/// The values of new customer records, in [`CUSTOMERS_INSERT`]'s order.
fn customer_values<'a>(recs: &'a [CustomerRec], fresh: &[usize], now: i64) -> Vec<Val<'a>> {
    let mut values: Vec<Val<'a>> = Vec::with_capacity(fresh.len() * 7);
    for &i in fresh {
        let r = &recs[i];
        values.extend::<[Val<'a>; 7]>([r.tenant_id.into(), r.bsuid.as_deref().into(), r.phone.as_deref().into(), r.name.as_deref().into(), r.username.as_deref().into(), now.into(), now.into()]);
    }
    values
}

/// PostgreSQL: the new customers, where another processor may be inserting the same person
/// right now (two of their messages in two batches). A row it committed first is taken
/// instead of failing the batch (the insert waits for it and skips it), with this message's
/// keys and profile added; one that matches two people is left to the handler's retry.
async fn insert_customers_racing(tx: &mut Tx, recs: &mut [CustomerRec], fresh: &[usize], now: i64) -> Result<(), sqlx::Error> {
    let Tx::Postgres(t) = tx else { return Err(sqlx::Error::Configuration("PostgreSQL only".into())) };
    for chunk in fresh.chunks(1000) {
        let rows = customer_values(recs, chunk, now);
        let sql = format!("{CUSTOMERS_INSERT} VALUES {} ON CONFLICT DO NOTHING RETURNING id, tenant_id, bsuid, phone", value_rows(Engine::Postgres, chunk.len(), 7, 1));
        let q = sqlx::query_as::<_, (i64, TenantId, Option<String>, Option<String>)>(sqlx::AssertSqlSafe(sql)).persistent(false);
        let inserted: HashMap<(TenantId, Option<String>, Option<String>), i64> =
            crate::bind_vals!(q, &rows).fetch_all(&mut **t).await?.into_iter().map(|(id, tenant, bsuid, phone)| ((tenant, bsuid, phone), id)).collect();
        drop(rows);
        for &i in chunk {
            let r = &recs[i];
            recs[i].id = inserted.get(&(r.tenant_id, r.bsuid.clone(), r.phone.clone())).copied();
        }
    }
    let taken: Vec<usize> = fresh.iter().copied().filter(|&i| recs[i].id.is_none()).collect();
    for i in taken {
        let r = &recs[i];
        let found = sqlx::query_scalar::<_, i64>("SELECT id FROM customers WHERE tenant_id = $1 AND (bsuid = $2 OR phone = $3)")
            .bind(r.tenant_id)
            .bind(&r.bsuid)
            .bind(&r.phone)
            .fetch_all(&mut **t)
            .await?;
        let [id] = found[..] else { return Err(sqlx::Error::RowNotFound) };
        sqlx::query(
            "UPDATE customers SET bsuid = COALESCE($2, bsuid), phone = COALESCE($3, phone), name = COALESCE($4, name), username = COALESCE($5, username), updated_at = $6 WHERE id = $1"
        )
        .bind(id)
        .bind(&r.bsuid)
        .bind(&r.phone)
        .bind(&r.name)
        .bind(&r.username)
        .bind(now)
        .execute(&mut **t)
        .await?;
        recs[i].id = Some(id);
    }
    Ok(())
}

fn index_rec(by_bsuid: &mut HashMap<(TenantId, String), usize>, by_phone: &mut HashMap<(TenantId, String), usize>, rec: &CustomerRec, at: usize) {
    if let Some(b) = &rec.bsuid {
        by_bsuid.insert((rec.tenant_id, b.clone()), at);
    }
    if let Some(p) = &rec.phone {
        by_phone.insert((rec.tenant_id, p.clone()), at);
    }
}

async fn update_rec(tx: &mut Tx, rec: &mut CustomerRec, now: i64) -> Result<(), sqlx::Error> {
    rec.dirty = false;
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE customers SET bsuid = $2, phone = $3, name = $4, username = $5, updated_at = $6 WHERE id = $1"
    )
    .bind(rec.id)
    .bind(&rec.bsuid)
    .bind(&rec.phone)
    .bind(&rec.name)
    .bind(&rec.username)
    .bind(now)
    .execute(c)
    .await
    .map(drop))
}

/// Record `b` (found by phone) is the same person as `a` (found by BSUID): one survives —
/// `a` when both are stored (its conversations and messages absorb `b`'s) — and takes the
/// other's keys. Returns the survivor.
async fn merge_recs(
    tx: &mut Tx,
    recs: &mut [CustomerRec],
    by_bsuid: &mut HashMap<(TenantId, String), usize>,
    by_phone: &mut HashMap<(TenantId, String), usize>,
    a: usize,
    b: usize,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let (into, from) = if recs[a].id.is_none() && recs[b].id.is_some() { (b, a) } else { (a, b) };
    if let (Some(into_id), Some(from_id)) = (recs[into].id, recs[from].id) {
        // Pending profile changes are written first: the merge reads the stored rows.
        for i in [into, from] {
            if recs[i].dirty {
                update_rec(tx, &mut recs[i], now).await?;
            }
        }
        merge_customers(tx, into_id, from_id).await?;
    }
    let tenant_id = recs[into].tenant_id;
    let from_rec = std::mem::replace(
        &mut recs[from],
        CustomerRec { id: None, tenant_id, bsuid: None, phone: None, name: None, username: None, dirty: false, merged_into: Some(into) },
    );
    let target = &mut recs[into];
    for (slot, old) in [(&mut target.bsuid, from_rec.bsuid), (&mut target.phone, from_rec.phone), (&mut target.name, from_rec.name), (&mut target.username, from_rec.username)] {
        if slot.is_none() && old.is_some() {
            *slot = old;
            target.dirty |= target.id.is_some() && from_rec.id.is_none();
        }
    }
    index_rec(by_bsuid, by_phone, &recs[into], into);
    Ok(into)
}

/// Moves everything of customer `from` to `into` and removes `from`.
async fn merge_customers(tx: &mut Tx, into: i64, from: i64) -> Result<(), sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Conv {
        id: i64,
        phone_number_id: String,
    }
    let convs = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Conv>("SELECT id, phone_number_id FROM conversations WHERE customer_id = $1")
        .bind(from)
        .fetch_all(c)
        .await)?;
    for conv in convs {
        let target = with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE customer_id = $1 AND phone_number_id = $2")
            .bind(into)
            .bind(&conv.phone_number_id)
            .fetch_optional(c)
            .await)?;
        match target {
            Some(t) => {
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE messages SET conversation_id = $1 WHERE conversation_id = $2").bind(t).bind(conv.id).execute(c).await.map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE outbox SET conversation_id = $1 WHERE conversation_id = $2").bind(t).bind(conv.id).execute(c).await.map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query(
                    "UPDATE conversations SET
                         last_customer_message_at = (SELECT MAX(x) FROM (SELECT last_customer_message_at AS x FROM conversations WHERE id IN ($1, $2)) m),
                         unread = unread + (SELECT unread FROM conversations WHERE id = $2)
                     WHERE id = $1"
                )
                .bind(t)
                .bind(conv.id)
                .execute(c)
                .await
                .map(drop))?;
                with_tx!(&mut *tx, |c| sqlx::query("DELETE FROM conversations WHERE id = $1").bind(conv.id).execute(c).await.map(drop))?;
            }
            None => {
                with_tx!(&mut *tx, |c| sqlx::query("UPDATE conversations SET customer_id = $1 WHERE id = $2").bind(into).bind(conv.id).execute(c).await.map(drop))?;
            }
        }
    }
    // The merged record's keys move over once the old row is gone (unique keys).
    #[derive(sqlx::FromRow)]
    struct Keys {
        bsuid: Option<String>,
        phone: Option<String>,
        name: Option<String>,
        username: Option<String>,
    }
    let keys = with_tx!(&mut *tx, |c| sqlx::query_as::<_, Keys>("SELECT bsuid, phone, name, username FROM customers WHERE id = $1")
        .bind(from)
        .fetch_one(c)
        .await)?;
    with_tx!(&mut *tx, |c| sqlx::query("DELETE FROM customers WHERE id = $1").bind(from).execute(c).await.map(drop))?;
    with_tx!(&mut *tx, |c| sqlx::query(
        "UPDATE customers SET bsuid = COALESCE(bsuid, $2), phone = COALESCE(phone, $3), name = COALESCE(name, $4), username = COALESCE(username, $5) WHERE id = $1"
    )
    .bind(into)
    .bind(keys.bsuid)
    .bind(keys.phone)
    .bind(keys.name)
    .bind(keys.username)
    .execute(c)
    .await
    .map(drop))
}

/// The conversation of a customer with one of the tenant's numbers, created if new.
pub async fn conversation_for(tx: &mut Tx, tenant: TenantId, phone_number_id: &str, customer: i64, now: i64) -> Result<i64, sqlx::Error> {
    let (mut ids, _) = conversations_for(tx, &[(tenant, phone_number_id, customer)], &HashMap::new(), now).await?;
    ids.pop().ok_or(sqlx::Error::RowNotFound)
}

/// [`conversation_for`] for many (tenant, number, customer) at once: one look-up for all pairs,
/// one multi-row insert for the new ones, which start as `starts` says the batch's messages
/// move them (so they need no update after). Returns the ids and which of them are new. A
/// conversation created meanwhile by another instance violates the unique key; the caller's
/// retry then finds it.
pub async fn conversations_for<'a>(
    tx: &mut Tx,
    keys: &[(TenantId, &'a str, i64)],
    starts: &HashMap<(&'a str, i64), Moved<'_>>,
    now: i64,
) -> Result<(Vec<i64>, HashSet<i64>), sqlx::Error> {
    let mut known: HashMap<(&str, i64), i64> = HashMap::new();
    // The stored ones: a join of the batch's (number, customer) pairs with the unique key,
    // a statement per chunk of pairs however many numbers the batch names.
    let mut pairs: Vec<(&'a str, i64)> = keys.iter().map(|&(_, number, customer)| (number, customer)).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let numbers: HashSet<&'a str> = pairs.iter().map(|p| p.0).collect();
    for chunk in statement_chunks(tx.engine(), &pairs) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!(
            "SELECT c.id, c.phone_number_id, c.customer_id FROM (VALUES {}) AS v
             JOIN conversations c ON c.phone_number_id = v.column1 AND c.customer_id = v.column2",
            value_rows(tx.engine(), chunk.len(), 2, 1)
        );
        let rows = with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for (number, customer) in chunk {
                q = q.bind(*number).bind(customer);
            }
            q.fetch_all(c).await
        })?;
        for (id, number, customer) in rows {
            if let Some(&number) = numbers.get(number.as_str()) {
                known.insert((number, customer), id);
            }
        }
    }
    let mut missing: Vec<(TenantId, &str, i64)> = Vec::new();
    let mut seen = HashSet::new();
    for &(tenant, number, customer) in keys {
        if !known.contains_key(&(number, customer)) && seen.insert((number, customer)) {
            missing.push((tenant, number, customer));
        }
    }
    let mut values: Vec<Val<'_>> = Vec::with_capacity(missing.len() * 9);
    for &(tenant, number, customer) in &missing {
        let start = starts.get(&(number, customer));
        values.extend::<[Val<'_>; 9]>([
            tenant.into(),
            number.into(),
            customer.into(),
            start.map_or(now, |s| s.at).into(),
            start.map_or("", |s| s.preview).into(),
            start.map_or(0, |s| s.unread).into(),
            start.and_then(|s| s.opens).into(),
            now.into(),
            start.map_or(0, |s| s.arrival).into(),
        ]);
    }
    const INSERT: &str = "INSERT INTO conversations (tenant_id, phone_number_id, customer_id, last_message_at, last_preview, unread, last_customer_message_at, created_at, last_arrival)";
    let mut created = HashSet::with_capacity(missing.len());
    match tx {
        Tx::Sqlite(_) => {
            for (&(_, number, customer), id) in missing.iter().zip(insert_ids(tx, INSERT, 9, &values).await?) {
                known.insert((number, customer), id);
                created.insert(id);
            }
        }
        // Another processor may be starting the same conversation right now: the insert waits
        // for it and skips it, and this batch then touches it like any conversation it found.
        Tx::Postgres(t) => {
            for (pairs, rows) in missing.chunks(1000).zip(values.chunks(1000 * 9)) {
                let sql = format!(
                    "{INSERT} VALUES {} ON CONFLICT (phone_number_id, customer_id) DO NOTHING RETURNING id, phone_number_id, customer_id",
                    value_rows(Engine::Postgres, pairs.len(), 9, 1)
                );
                let q = sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(sql)).persistent(false);
                let inserted: HashMap<(String, i64), i64> =
                    crate::bind_vals!(q, rows).fetch_all(&mut **t).await?.into_iter().map(|(id, number, customer)| ((number, customer), id)).collect();
                for &(_, number, customer) in pairs {
                    let id = match inserted.get(&(number.to_owned(), customer)) {
                        Some(&id) => {
                            created.insert(id);
                            id
                        }
                        None => sqlx::query_scalar::<_, i64>("SELECT id FROM conversations WHERE phone_number_id = $1 AND customer_id = $2")
                            .bind(number)
                            .bind(customer)
                            .fetch_one(&mut **t)
                            .await?,
                    };
                    known.insert((number, customer), id);
                }
            }
        }
    }
    let ids = keys.iter().map(|&(_, number, customer)| known.get(&(number, customer)).copied().ok_or(sqlx::Error::RowNotFound)).collect::<Result<_, _>>()?;
    Ok((ids, created))
}

/// A message to store.
pub struct NewMessage<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// Conversation.
    pub conversation_id: i64,
    /// `in` or `out`.
    pub direction: &'a str,
    /// Meta's id (inbound, or outbound once accepted).
    pub wamid: Option<&'a str>,
    /// Message type (`text`, `image`, `template`, …).
    pub kind: &'a str,
    /// Searchable text: the text, caption or template name.
    pub body: &'a str,
    /// The message's JSON text as Meta sent it (inbound) or as we send it (outbound).
    pub payload: &'a str,
    /// The quoted message.
    pub reply_to: Option<&'a str>,
    /// Outbox entry of an outbound message.
    pub outbox_id: Option<OutboxId>,
    /// Initial status.
    pub status: &'a str,
    /// Meta's timestamp (inbound) or now (outbound), Unix ms.
    pub meta_at: i64,
}

/// Stores an outbound message; `None` when Meta's id is already stored.
pub async fn insert_message(tx: &mut Tx, m: &NewMessage<'_>, now: i64) -> Result<Option<i64>, sqlx::Error> {
    with_tx!(&mut *tx, |c| sqlx::query_scalar::<_, i64>(
        "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, reply_to_wamid, outbox_id, status, status_rank, meta_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (tenant_id, wamid) WHERE direction = 'out' DO NOTHING RETURNING id"
    )
    .bind(m.tenant)
    .bind(m.conversation_id)
    .bind(m.direction)
    .bind(m.wamid)
    .bind(m.kind)
    .bind(m.body)
    .bind(m.payload)
    .bind(m.reply_to)
    .bind(m.outbox_id)
    .bind(m.status)
    .bind(status_rank(m.status))
    .bind(m.meta_at)
    .bind(now)
    .fetch_optional(c)
    .await)
}

/// An inbound message to store: [`NewMessage`] always has Meta's id here.
pub struct NewInbound<'a> {
    /// The message.
    pub message: NewMessage<'a>,
    /// Meta's id (or ours, for a message without one).
    pub wamid: &'a str,
    /// The journal entry of the body it came in: the order of arrival.
    pub arrival: i64,
}

/// When Meta says an inbound message was sent (Unix ms), or — a message without a timestamp,
/// which Meta always gives — when its body arrived. With Meta's id it keys the message.
pub fn inbound_at(message: &wabridge_cloud_api::webhook::Message, received_at: i64) -> i64 {
    message.timestamp.map_or(received_at, |s| s.saturating_mul(1000))
}

/// Stored inbound messages by their key — (tenant, [`inbound_at`], Meta's id) — as `columns`
/// of `messages m`: a seek per key. Inbound messages are indexed by time first, so that a new
/// one is written next to the last ones instead of to a random page of an index by Meta's
/// scattered ids; found by Meta's id alone only within a conversation.
pub async fn inbound_by_key<R>(tx: &mut Tx, columns: &str, keys: &[(TenantId, i64, &str)]) -> Result<Vec<(TenantId, R)>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut found = Vec::new();
    for (tenant, pairs) in keys_by_tenant(keys.iter().map(|&(tenant, at, wamid)| (tenant, (at, wamid)))) {
        for chunk in statement_chunks(tx.engine(), &pairs) {
            let engine = tx.engine();
            // The keys drive the join (CROSS JOIN keeps SQLite from starting with messages).
            let sql = format!(
                "SELECT {columns} FROM (VALUES {}) AS v CROSS JOIN messages m
                 WHERE m.tenant_id = {} AND m.direction = 'in' AND m.meta_at = v.column1 AND m.wamid = v.column2",
                value_rows(engine, chunk.len(), 2, 1),
                param_list(engine, 1, 2 * chunk.len() + 1)
            );
            let rows = with_tx!(&mut *tx, |c| {
                let mut q = sqlx::query_as::<_, R>(sqlx::AssertSqlSafe(sql.clone())).persistent(keep_prepared(engine));
                for &(at, wamid) in chunk {
                    q = q.bind(at).bind(wamid);
                }
                q.bind(tenant).fetch_all(c).await
            })?;
            found.extend(rows.into_iter().map(|r| (tenant, r)));
        }
    }
    Ok(found)
}

/// Which inbound messages — keyed as in [`inbound_by_key`] — are new: not stored yet and not
/// an earlier one of the same list (Meta redelivers, also within one batch).
pub async fn unstored(tx: &mut Tx, keys: &[(TenantId, i64, &str)]) -> Result<Vec<bool>, sqlx::Error> {
    let stored: HashSet<(TenantId, i64, String)> =
        inbound_by_key::<(i64, String)>(tx, "m.meta_at, m.wamid", keys).await?.into_iter().map(|(t, (at, w))| (t, at, w)).collect();
    let mut seen: HashSet<(TenantId, i64, &str)> = HashSet::new();
    Ok(keys.iter().map(|&(tenant, at, wamid)| !stored.contains(&(tenant, at, wamid.to_owned())) && seen.insert((tenant, at, wamid))).collect())
}

/// Stores new inbound messages (see [`unstored`]) with one multi-row insert per chunk and
/// returns their ids; a message stored meanwhile by another instance violates the unique key
/// and the caller's retry skips it.
pub async fn insert_inbound(tx: &mut Tx, messages: &[NewInbound<'_>], now: i64) -> Result<Vec<i64>, sqlx::Error> {
    let mut values: Vec<Val<'_>> = Vec::with_capacity(messages.len() * 14);
    for n in messages {
        let m = &n.message;
        values.extend::<[Val<'_>; 14]>([
            m.tenant.into(),
            m.conversation_id.into(),
            m.direction.into(),
            n.wamid.into(),
            m.kind.into(),
            m.body.into(),
            m.payload.into(),
            m.reply_to.into(),
            m.outbox_id.map(|o| o.0).into(),
            m.status.into(),
            status_rank(m.status).into(),
            m.meta_at.into(),
            now.into(),
            n.arrival.into(),
        ]);
    }
    insert_ids(
        tx,
        "INSERT INTO messages (tenant_id, conversation_id, direction, wamid, kind, body, payload, reply_to_wamid, outbox_id, status, status_rank, meta_at, created_at, arrival)",
        14,
        &values,
    )
    .await
}

/// Moves the conversation forward after a new message.
pub async fn touch_conversation(tx: &mut Tx, conversation: i64, at: i64, preview: &str, from_customer: bool, opens_window: bool) -> Result<(), sqlx::Error> {
    touch_conversations(tx, &[Touch { conversation, at, arrival: 0, preview, from_customer, opens_window }]).await
}

/// A new message in a conversation, for [`touch_conversations`].
pub struct Touch<'a> {
    /// The conversation.
    pub conversation: i64,
    /// The message's time (Meta's, for a customer's), Unix ms.
    pub at: i64,
    /// The journal entry it came in (0 for ours): the order within one second.
    pub arrival: i64,
    /// Its text for the list.
    pub preview: &'a str,
    /// Whether the customer sent it (counts as unread).
    pub from_customer: bool,
    /// Whether it opens the 24-hour window.
    pub opens_window: bool,
}

/// What messages do to one conversation: the latest time and its message's preview, how
/// many are unread, the latest time that opens the window.
#[derive(Clone, Copy)]
pub struct Moved<'a> {
    /// Latest message time.
    pub at: i64,
    /// The latest message's arrival (see [`Touch::arrival`]).
    pub arrival: i64,
    /// Preview of the latest message (by time, then arrival).
    pub preview: &'a str,
    /// Customer messages (unread).
    pub unread: i64,
    /// Latest time that opens the 24-hour window.
    pub opens: Option<i64>,
}

impl<'a> Moved<'a> {
    /// What one message does.
    pub fn of(t: &Touch<'a>) -> Moved<'a> {
        Moved { at: t.at, arrival: t.arrival, preview: t.preview, unread: i64::from(t.from_customer), opens: t.opens_window.then_some(t.at) }
    }

    /// Folds what each message does, per key, in order (keys in first-seen order).
    pub fn fold<K: std::hash::Hash + Eq + Copy>(moves: impl IntoIterator<Item = (K, Moved<'a>)>) -> Vec<(K, Moved<'a>)> {
        let mut out: Vec<(K, Moved<'a>)> = Vec::new();
        let mut at_of: HashMap<K, usize> = HashMap::new();
        for (key, m) in moves {
            match at_of.get(&key) {
                Some(&i) => {
                    let o = &mut out[i].1;
                    // The latest by time and arrival, as the conversation orders its messages
                    // (one of ours, arrival 0, before a customer's of the same instant).
                    if (m.at, m.arrival) >= (o.at, o.arrival) {
                        o.preview = m.preview;
                        o.arrival = m.arrival;
                    }
                    o.at = o.at.max(m.at);
                    o.unread += m.unread;
                    o.opens = o.opens.max(m.opens);
                }
                None => {
                    at_of.insert(key, out.len());
                    out.push((key, m));
                }
            }
        }
        out
    }
}

/// [`touch_conversation`] for many messages, in order: one update per chunk of conversations.
/// The list shows the latest message by time, then arrival — the last the conversation shows,
/// whatever order Meta delivers them in or processors apply them in — the window runs from the
/// latest customer message (Meta's timestamps), and every customer message is unread.
pub async fn touch_conversations(tx: &mut Tx, touches: &[Touch<'_>]) -> Result<(), sqlx::Error> {
    let mut merged = Moved::fold(touches.iter().map(|t| (t.conversation, Moved::of(t))));
    // In id order, so that two instances updating the same conversations lock them alike.
    merged.sort_unstable_by_key(|m| m.0);
    // The stored last message stays when it is later: by time, then by arrival.
    let later = "(last_message_at > v.column2 OR (last_message_at = v.column2 AND COALESCE(last_arrival, 0) > v.column6))";
    for chunk in statement_chunks(tx.engine(), &merged) {
        let prepared = keep_prepared(tx.engine());
        let sql = format!(
            "UPDATE conversations SET
                 last_message_at = CASE WHEN last_message_at > v.column2 THEN last_message_at ELSE v.column2 END,
                 last_preview = CASE WHEN {later} THEN last_preview ELSE v.column3 END,
                 last_arrival = CASE WHEN {later} THEN last_arrival ELSE v.column6 END,
                 unread = unread + v.column4,
                 last_customer_message_at = CASE WHEN v.column5 IS NOT NULL AND (last_customer_message_at IS NULL OR last_customer_message_at < v.column5)
                     THEN v.column5 ELSE last_customer_message_at END
             FROM (VALUES {}) AS v WHERE conversations.id = v.column1",
            value_rows(tx.engine(), chunk.len(), 6, 1)
        );
        with_tx!(&mut *tx, |c| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).persistent(prepared);
            for (conversation, m) in chunk {
                q = q.bind(conversation).bind(m.at).bind(m.preview).bind(m.unread).bind(m.opens).bind(m.arrival);
            }
            q.execute(c).await.map(drop)
        })?;
    }
    Ok(())
}

/// What happened to a send, as the outbox worker reports it.
pub enum OutcomeUpdate {
    /// Meta accepted it.
    Accepted {
        /// Meta's id.
        wamid: Option<String>,
    },
    /// It will be tried again.
    Retrying,
    /// It may or may not have been sent: the next status decides.
    Unknown,
    /// It failed for good.
    Failed {
        /// Meta's error code.
        code: Option<i64>,
    },
}

/// Applies an outbox outcome to the message it sent, and tells the browsers.
pub async fn record_outcome(db: &Db, hub: &LiveHub, outbox: OutboxId, update: OutcomeUpdate, now: i64) -> Result<(), sqlx::Error> {
    let (status, wamid, code) = match update {
        OutcomeUpdate::Accepted { wamid } => ("accepted", wamid, None),
        OutcomeUpdate::Retrying => return Ok(()),
        OutcomeUpdate::Unknown => ("unknown", None, None),
        OutcomeUpdate::Failed { code } => ("failed", None, code),
    };
    let mut tx = db.begin().await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        tenant_id: TenantId,
        conversation_id: i64,
    }
    let row = with_tx!(&mut tx, |c| sqlx::query_as::<_, Row>(
        "UPDATE messages SET wamid = COALESCE(wamid, $2),
             status = CASE WHEN status_rank < $4 THEN $3 ELSE status END,
             error_code = CASE WHEN status_rank < $4 THEN $5 ELSE error_code END,
             status_rank = CASE WHEN status_rank < $4 THEN $4 ELSE status_rank END
         WHERE outbox_id = $1 RETURNING id, tenant_id, conversation_id"
    )
    .bind(outbox)
    .bind(wamid)
    .bind(status)
    .bind(status_rank(status))
    .bind(code)
    .fetch_optional(c)
    .await)?;
    let Some(row) = row else { return tx.commit().await };
    let events = [message_event(row.tenant_id, row.conversation_id, row.id, false)];
    live::commit(db, hub, tx, &events, now).await?;
    Ok(())
}

/// The live event that makes open conversation pages refresh a message (`inbound`: a
/// customer's new message, which the conversation list shows too).
pub fn message_event(tenant: TenantId, conversation: i64, message: i64, inbound: bool) -> NewEvent {
    /// Written straight to its JSON text: a batch makes one per customer message.
    #[derive(serde::Serialize)]
    struct Payload {
        conversation: i64,
        message: i64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        inbound: bool,
    }
    NewEvent::new(tenant, None, "message", &Payload { conversation, message, inbound })
}

/// A conversation row for lists.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ConversationRow {
    /// Id.
    pub id: i64,
    /// Our number.
    pub phone_number_id: String,
    /// Customer id.
    pub customer_id: i64,
    /// Customer's name.
    pub name: Option<String>,
    /// Customer's username.
    pub username: Option<String>,
    /// Customer's phone.
    pub phone: Option<String>,
    /// Customer's BSUID.
    pub bsuid: Option<String>,
    /// Meta's time of the customer's last message.
    pub last_customer_message_at: Option<i64>,
    /// Last activity.
    pub last_message_at: i64,
    /// Last message preview.
    pub last_preview: String,
    /// Unread customer messages.
    pub unread: i64,
    /// Our number as people know it (`+49 30 …`), when Meta told us.
    pub number_label: Option<String>,
}

const CONVERSATION_COLUMNS: &str = "c.id, c.phone_number_id, c.customer_id, u.name, u.username, u.phone, u.bsuid, c.last_customer_message_at, c.last_message_at, c.last_preview, c.unread,
     (SELECT n.display_phone_number FROM phone_numbers n WHERE n.phone_number_id = c.phone_number_id) AS number_label";

/// How many numbers a tenant has (with several, a conversation says which it is on).
pub async fn number_count(db: &Db, tenant: TenantId) -> Result<i64, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM phone_numbers WHERE tenant_id = $1").bind(tenant).fetch_one(p).await)
}

/// Where a page of conversations starts: after the one with this time and, among those with
/// the same (Meta's times are whole seconds), this id. (A conversation's messages have a
/// [`Place`].)
#[derive(Clone, Copy, Debug)]
pub struct Before {
    /// The previous page's last `last_message_at` (or message time).
    pub at: i64,
    /// Its id (without it, everything of that instant is left out).
    pub id: Option<i64>,
}

/// A page of a tenant's conversations, newest first, optionally filtered by name, username
/// or number (a number is matched by its digits, however it is written: `+49 151 …`,
/// `0049 151 …`, or nationally `0151-…`, whose trunk 0 the stored number does not have).
pub async fn conversations(db: &Db, tenant: TenantId, search: Option<&str>, before: Option<Before>, limit: i64) -> Result<Vec<ConversationRow>, sqlx::Error> {
    let pattern = search.map(|s| format!("%{}%", s.trim().to_lowercase().replace(['%', '_'], "")));
    let digits: String = search.unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    let national = digits.strip_prefix("00").or_else(|| digits.strip_prefix('0')).unwrap_or(&digits);
    let phone_pattern = if national.len() >= 3 { Some(format!("%{national}%")) } else { pattern.clone() };
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN customers u ON u.id = c.customer_id
         WHERE c.tenant_id = $1
           AND ($2 IS NULL OR LOWER(COALESCE(u.name, '')) LIKE $2 OR COALESCE(u.phone, '') LIKE $6 OR LOWER(COALESCE(u.username, '')) LIKE $2)
           AND ($3 IS NULL OR c.last_message_at < $3 OR (c.last_message_at = $3 AND c.id < $5))
         ORDER BY c.last_message_at DESC, c.id DESC LIMIT $4"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant)
        .bind(&pattern)
        .bind(before.map(|b| b.at))
        .bind(limit)
        .bind(before.and_then(|b| b.id))
        .bind(&phone_pattern)
        .fetch_all(p)
        .await)
}

/// One conversation of a tenant (None for another tenant's id).
pub async fn conversation(db: &Db, tenant: TenantId, id: i64) -> Result<Option<ConversationRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE c.tenant_id = $1 AND c.id = $2"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, ConversationRow>(sqlx::AssertSqlSafe(sql.clone())).bind(tenant).bind(id).fetch_optional(p).await)
}

/// A stored message.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRow {
    /// Id.
    pub id: i64,
    /// `in` or `out`.
    pub direction: String,
    /// Meta's id.
    pub wamid: Option<String>,
    /// Type.
    pub kind: String,
    /// Text or caption.
    pub body: String,
    /// JSON.
    pub payload: String,
    /// Quoted message.
    pub reply_to_wamid: Option<String>,
    /// Status.
    pub status: String,
    /// Meta's error code.
    pub error_code: Option<i64>,
    /// Time (Meta's for inbound).
    pub meta_at: i64,
    /// The state of a customer's file (`pending`, `stored`, `failed`), if it carries one.
    pub media_state: Option<String>,
    /// The journal entry an inbound message came in (see [`NewInbound::arrival`]).
    pub arrival: Option<i64>,
}

/// Every reaction in a conversation and the messages with these ids: what a page of a long
/// conversation needs from beyond it.
pub async fn reactions_and(db: &Db, tenant: TenantId, conversation: i64, wamids: &[&str]) -> Result<Vec<MessageRow>, sqlx::Error> {
    // One style of placeholder per statement (SQLite's lists are anonymous).
    let param = |n, first| param_list(db.engine(), n, first);
    let named = if wamids.is_empty() { String::new() } else { format!(" OR wamid IN ({})", param(wamids.len(), 3)) };
    let sql = format!(
        "SELECT id, direction, wamid, kind, body, payload, reply_to_wamid, status, error_code, meta_at, arrival, NULL AS media_state
         FROM messages WHERE tenant_id = {} AND conversation_id = {} AND (kind = 'reaction'{named})",
        param(1, 1),
        param(1, 2)
    );
    with_pool!(db.read(), |p| {
        let mut q = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(sql.clone())).persistent(false).bind(tenant).bind(conversation);
        for w in wamids {
            q = q.bind(*w);
        }
        q.fetch_all(p).await
    })
}

/// Where a message stands in its conversation: by Meta's time (whole seconds for a
/// customer's), then — within one second — by the order its webhook came in (a message of ours
/// counts as first), then by id (the order within one webhook). The row id alone is not the
/// order of arrival: on PostgreSQL several processors apply webhooks side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Place {
    /// Meta's time (Unix ms).
    pub at: i64,
    /// The journal entry it came in; 0 for ours.
    pub arrival: i64,
    /// Its id.
    pub id: i64,
}

impl Place {
    /// A stored message's place.
    pub fn of(m: &MessageRow) -> Place {
        Place { at: m.meta_at, arrival: m.arrival.unwrap_or(0), id: m.id }
    }
}

/// The last `limit` messages of a conversation — or the last before the message at `before`
/// — oldest first.
pub async fn messages(db: &Db, tenant: TenantId, conversation: i64, limit: i64, before: Option<Place>) -> Result<Vec<MessageRow>, sqlx::Error> {
    let mut rows = with_pool!(db.read(), |p| sqlx::query_as::<_, MessageRow>(
        "SELECT id, direction, wamid, kind, body, payload, reply_to_wamid, status, error_code, meta_at, arrival,
             (SELECT state FROM media WHERE media.message_id = messages.id) AS media_state
         FROM messages WHERE tenant_id = $1 AND conversation_id = $2
           AND ($4 IS NULL OR meta_at < $4 OR (meta_at = $4 AND (COALESCE(arrival, 0) < $5 OR (COALESCE(arrival, 0) = $5 AND id < $6))))
         ORDER BY meta_at DESC, COALESCE(arrival, 0) DESC, id DESC LIMIT $3"
    )
    .bind(tenant)
    .bind(conversation)
    .bind(limit)
    .bind(before.map(|b| b.at))
    .bind(before.map(|b| b.arrival))
    .bind(before.map(|b| b.id))
    .fetch_all(p)
    .await)?;
    rows.reverse();
    Ok(rows)
}

/// A message's place as the columns of a [`Place`].
const PLACE_COLUMNS: &str = "meta_at AS at, COALESCE(arrival, 0) AS arrival, id";

/// A message as a link finds it: its conversation, and its place there.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Located {
    pub conversation_id: i64,
    #[sqlx(flatten)]
    pub place: Place,
}

/// An inbound message by its key (see [`inbound_by_key`]), for the links of its
/// notifications.
pub async fn inbound_by_time(db: &Db, tenant: TenantId, at: i64, wamid: &str) -> Result<Option<Located>, sqlx::Error> {
    let sql = format!("SELECT conversation_id, {PLACE_COLUMNS} FROM messages WHERE tenant_id = $1 AND direction = 'in' AND meta_at = $2 AND wamid = $3");
    with_pool!(db.read(), |p| sqlx::query_as::<_, Located>(sqlx::AssertSqlSafe(sql.clone()))
    .bind(tenant)
    .bind(at)
    .bind(wamid)
    .fetch_optional(p)
    .await)
}

/// A message by Meta's id alone: ours by the index of our sends, a customer's by reading the
/// tenant's messages (the links of notifications made before their time was in them).
pub async fn by_wamid(db: &Db, tenant: TenantId, wamid: &str) -> Result<Option<Located>, sqlx::Error> {
    let sql = format!(
        "SELECT conversation_id, {PLACE_COLUMNS} FROM messages WHERE tenant_id = $1 AND direction = 'out' AND wamid = $2
         UNION ALL SELECT conversation_id, {PLACE_COLUMNS} FROM messages WHERE tenant_id = $1 AND direction = 'in' AND wamid = $2 LIMIT 1"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, Located>(sqlx::AssertSqlSafe(sql.clone()))
    .bind(tenant)
    .bind(wamid)
    .fetch_optional(p)
    .await)
}

/// Up to `limit` of the places of the messages after a message in its conversation, oldest
/// first.
pub async fn places_after(db: &Db, tenant: TenantId, m: Located, limit: i64) -> Result<Vec<Place>, sqlx::Error> {
    let sql = format!(
        "SELECT {PLACE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2
           AND (meta_at > $3 OR (meta_at = $3 AND (COALESCE(arrival, 0) > $4 OR (COALESCE(arrival, 0) = $4 AND id > $5))))
         ORDER BY meta_at, COALESCE(arrival, 0), id LIMIT $6"
    );
    with_pool!(db.read(), |p| sqlx::query_as::<_, Place>(sqlx::AssertSqlSafe(sql.clone()))
        .bind(tenant)
        .bind(m.conversation_id)
        .bind(m.place.at)
        .bind(m.place.arrival)
        .bind(m.place.id)
        .bind(limit)
        .fetch_all(p)
        .await)
}

/// A conversation's latest `limit` customer messages: Meta's id and time (Unix ms).
pub async fn latest_inbound(db: &Db, tenant: TenantId, conversation: i64, limit: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_as::<_, (String, i64)>(
        "SELECT wamid, meta_at FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND direction = 'in' AND wamid IS NOT NULL
         ORDER BY meta_at DESC, COALESCE(arrival, 0) DESC, id DESC LIMIT $3"
    )
    .bind(tenant)
    .bind(conversation)
    .bind(limit)
    .fetch_all(p)
    .await)
}

/// Whether a message (by Meta's id) is one of the conversation's.
pub async fn in_conversation(db: &Db, tenant: TenantId, conversation: i64, wamid: &str) -> Result<bool, sqlx::Error> {
    with_pool!(db.read(), |p| sqlx::query_scalar::<_, i64>("SELECT id FROM messages WHERE conversation_id = $1 AND tenant_id = $2 AND wamid = $3 LIMIT 1")
        .bind(conversation)
        .bind(tenant)
        .bind(wamid)
        .fetch_optional(p)
        .await)
    .map(|found| found.is_some())
}
