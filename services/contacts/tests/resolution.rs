//! Identity resolution against real PostgreSQL and RabbitMQ: the resolver handles inbound
//! events (directly, and racing itself) and publishes what it resolves to routing's queues.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message as _;
use switchboard_contacts::topology::routing_queues;
use switchboard_contacts::{ContactsMetrics, Resolver};
use switchboard_domain::Channel;
use switchboard_messaging::lapin::types::FieldTable;
use switchboard_messaging::{Batched, Bus, Handler, HandlerError, Incoming, MessagingError, Outgoing};
use switchboard_postgres::Pool;
use switchboard_proto::common::v1::SenderIdentity;
use switchboard_proto::events::v1::{
    ConsentAction, ConsentChange, Envelope, InboundEvent, InboundMessage, StatusReceipt, envelope::Payload,
    inbound_event::Kind,
};
use switchboard_testkit::{TestDatabase, eventually};
use tokio_util::sync::CancellationToken;

const WORKSPACE: &str = "ws_resolution";
const WHATSAPP_ACCOUNT: &str = "chacc_whatsapp1";
const SMS_ACCOUNT: &str = "chacc_sms1";
const TELEGRAM_ACCOUNT: &str = "chacc_telegram1";

/// The event type of the test's sentinels (see [`Harness::routed_all`]).
const SENTINEL: &str = "contact.sentinel";

/// Collects what reaches routing's queues (sentinels apart).
#[derive(Default)]
struct Routing {
    seen: Mutex<Vec<Envelope>>,
    sentinels: Mutex<HashSet<String>>,
}

impl Handler for Routing {
    async fn handle(&self, message: &Incoming) -> Result<(), HandlerError> {
        let envelope = message.decode_envelope().map_err(HandlerError::permanent)?;
        if envelope.event_type == SENTINEL {
            self.sentinels.lock().unwrap().insert(envelope.event_id);
        } else {
            self.seen.lock().unwrap().push(envelope);
        }
        Ok(())
    }
}

struct Harness {
    _database: TestDatabase,
    pool: Pool,
    bus: Bus,
    resolver: Arc<Resolver>,
    metrics: Arc<ContactsMetrics>,
    routing: Arc<Routing>,
    consumers: tokio::task::JoinHandle<Result<(), MessagingError>>,
    shutdown: CancellationToken,
}

impl Harness {
    async fn start() -> Self {
        let database = TestDatabase::create().await.unwrap();
        let pool = switchboard_postgres::connect(&database.config()).await.unwrap();
        switchboard_postgres::migrate(&pool, &switchboard_contacts::MIGRATIONS)
            .await
            .unwrap();
        let bus = Bus::start(
            switchboard_testkit::bus_config(),
            Arc::new(switchboard_messaging::metrics::MessagingMetrics::default()),
        );
        let metrics = Arc::new(ContactsMetrics::default());
        let resolver = Arc::new(Resolver::new(pool.clone(), &bus, metrics.clone()));
        let topology = routing_queues(&bus);
        topology.declare().await.unwrap();
        let routing = Arc::new(Routing::default());
        let shutdown = CancellationToken::new();
        let consumers = tokio::spawn(switchboard_messaging::run_partitioned_consumers(
            bus.clone(),
            topology.queues().to_vec(),
            routing.clone(),
            switchboard_messaging::fixed_seat(switchboard_messaging::Seat::ALONE),
            shutdown.clone(),
        ));
        Self {
            _database: database,
            pool,
            bus,
            resolver,
            metrics,
            routing,
            consumers,
            shutdown,
        }
    }

    async fn handle(&self, envelope: &Envelope) {
        self.resolver.handle(&incoming(envelope)).await.unwrap();
    }

    async fn sql_i64(&self, sql: &str) -> i64 {
        let client = self.pool.get().await.unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn execute(&self, sql: &str) {
        let client = self.pool.get().await.unwrap();
        client.batch_execute(sql).await.unwrap();
    }

    /// Waits until routing got `count` events, and returns them.
    async fn routed(&self, count: usize) -> Vec<Envelope> {
        eventually(Duration::from_secs(10), "events at routing", || async {
            let seen = self.routing.seen.lock().unwrap().clone();
            (seen.len() >= count).then_some(seen)
        })
        .await
    }

    /// Waits until routing handled everything published so far, and returns it: a sentinel goes
    /// to every partition queue, each consumed in order, so once routing saw them all, whatever
    /// was published before them has been handled.
    async fn routed_all(&self) -> Vec<Envelope> {
        let publisher = self.bus.publisher();
        let partitions = self.bus.partitions().of_family("contact");
        for partition in 0..partitions {
            let sentinel = Envelope {
                event_id: format!("evt_sentinel{partition}"),
                event_type: SENTINEL.to_owned(),
                workspace_id: WORKSPACE.to_owned(),
                ..Envelope::default()
            };
            publisher
                .publish(Outgoing {
                    routing_key: format!("{SENTINEL}.p{partition:02}"),
                    payload: sentinel.encode_to_vec(),
                    message_id: sentinel.event_id.clone(),
                    message_type: sentinel.event_type.clone(),
                    headers: FieldTable::default(),
                })
                .await
                .unwrap();
        }
        eventually(
            Duration::from_secs(10),
            "a sentinel through every routing queue",
            || async {
                (self.routing.sentinels.lock().unwrap().len() == usize::from(partitions)).then_some(())
            },
        )
        .await;
        self.routing.seen.lock().unwrap().clone()
    }

    async fn contact_of(&self, account: &str, sender: &str) -> Option<String> {
        let client = self.pool.get().await.unwrap();
        client
            .query_opt(
                "SELECT contact_id FROM contacts.identities WHERE channel_account_id = $1 AND channel_user_id = $2",
                &[&account, &sender],
            )
            .await
            .unwrap()
            .map(|row| row.get(0))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        // The consumers return once their handlers finished and their channels are closed.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.consumers)
            .await
            .expect("routing's consumers stop");
        let namespace = self.bus.config().namespace.clone();
        let mut queues = Vec::new();
        for queue in routing_queues(&self.bus).queues().to_vec() {
            queues.push(queue.dead_letter_queue());
            queues.push(queue.name);
        }
        self.bus.close().await;
        switchboard_testkit::delete_bus_objects(&namespace, queues);
    }
}

fn incoming(envelope: &Envelope) -> Incoming {
    Incoming {
        queue: "contacts.inbound.p00".to_owned(),
        routing_key: format!("{}.p00", envelope.event_type),
        payload: envelope.encode_to_vec(),
        message_id: Some(envelope.event_id.clone()),
        message_type: Some(envelope.event_type.clone()),
        headers: FieldTable::default(),
        redelivered: false,
    }
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

struct Event {
    channel: Channel,
    account: &'static str,
    sender: SenderIdentity,
    kind: Kind,
    at: DateTime<Utc>,
    id: String,
}

impl Event {
    fn message(channel: Channel, account: &'static str, sender: &str, id: &str) -> Self {
        Self {
            channel,
            account,
            sender: SenderIdentity {
                channel_user_id: sender.to_owned(),
                display_name: "Ada Lovelace".to_owned(),
                ..SenderIdentity::default()
            },
            kind: Kind::Message(InboundMessage {
                provider_message_id: id.to_owned(),
                ..InboundMessage::default()
            }),
            at: Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap(),
            id: id.to_owned(),
        }
    }

    fn whatsapp(sender: &str, id: &str) -> Self {
        let mut event = Self::message(Channel::Whatsapp, WHATSAPP_ACCOUNT, sender, id);
        event.sender.phone_e164 = format!("+{sender}");
        event
    }

    fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }

    fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    fn envelope(&self) -> Envelope {
        let kind = match &self.kind {
            Kind::Message(_) => "message",
            Kind::Status(_) => "status",
            Kind::Consent(_) => "consent",
            _ => "other",
        };
        Envelope {
            event_id: format!("evt_{}", self.id),
            event_type: format!("inbound.{}.{kind}", self.channel.as_str()),
            occurred_at: Some(timestamp(self.at)),
            workspace_id: WORKSPACE.to_owned(),
            correlation_id: format!("req-{}", self.id),
            causation_id: String::new(),
            partition_key: format!("{}:{}", self.account, self.sender.channel_user_id),
            payload: Some(Payload::Inbound(InboundEvent {
                channel: self.channel.to_proto() as i32,
                channel_account_id: self.account.to_owned(),
                received_at: Some(timestamp(self.at)),
                sender: Some(self.sender.clone()),
                kind: Some(self.kind.clone()),
                ..InboundEvent::default()
            })),
        }
    }
}

fn resolved(envelope: &Envelope) -> Option<(String, bool)> {
    match &envelope.payload {
        Some(Payload::ContactInbound(resolved)) => Some((resolved.contact_id.clone(), resolved.new_contact)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_first_messages_of_a_new_sender_racing_make_one_contact() {
    let harness = Harness::start().await;
    let senders: Vec<String> = (0..20).map(|index| format!("1650555{index:04}")).collect();
    let mut tasks = Vec::new();
    for sender in &senders {
        for copy in 0..2 {
            let resolver = harness.resolver.clone();
            let envelope = Event::whatsapp(sender, &format!("wamid-{sender}-{copy}")).envelope();
            tasks.push(tokio::spawn(async move {
                resolver.handle(&incoming(&envelope)).await.unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        harness.sql_i64("SELECT count(*) FROM contacts.contacts").await,
        20
    );
    assert_eq!(
        harness.sql_i64("SELECT count(*) FROM contacts.identities").await,
        20
    );
    // Both events of each sender reached routing, with the same contact; one says "new".
    let routed = harness.routed(60).await;
    let mut by_sender: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    for envelope in &routed {
        if let Some((contact, new_contact)) = resolved(envelope) {
            let Some(Payload::ContactInbound(inbound)) = &envelope.payload else {
                unreachable!()
            };
            let sender = inbound
                .event
                .as_ref()
                .unwrap()
                .sender
                .as_ref()
                .unwrap()
                .channel_user_id
                .clone();
            assert_eq!(envelope.partition_key, contact, "partitioned by contact");
            by_sender.entry(sender).or_default().push((contact, new_contact));
        }
    }
    assert_eq!(by_sender.len(), 20);
    for (sender, events) in by_sender {
        assert_eq!(events.len(), 2, "{sender}");
        assert_eq!(events[0].0, events[1].0, "{sender}: one contact");
        assert_eq!(events.iter().filter(|(_, new)| *new).count(), 1, "{sender}");
    }
    let created = routed
        .iter()
        .filter(|envelope| envelope.event_type == "contact.created")
        .count();
    assert_eq!(created, 20, "one contact.created per contact");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_has_no_second_effect_and_is_forwarded_again_with_the_same_id() {
    let harness = Harness::start().await;
    let envelope = Event::whatsapp("16505550100", "wamid-once").envelope();
    harness.handle(&envelope).await;
    harness.handle(&envelope).await;
    assert_eq!(harness.sql_i64("SELECT count(*) FROM contacts.contacts").await, 1);
    assert_eq!(
        harness
            .sql_i64("SELECT sum(contacts)::bigint FROM contacts.monthly_usage")
            .await,
        1
    );
    // The replay is forwarded again whole (contact.created and the event, same ids), as after a
    // crash between commit and publish: four events, routing dedupes them.
    let routed = harness.routed(4).await;
    let ids: Vec<&str> = routed.iter().map(|envelope| envelope.event_id.as_str()).collect();
    assert_eq!(
        ids.iter().filter(|id| **id == "evt_wamid-once").count(),
        2,
        "forwarded twice, same id (routing dedupes): {ids:?}"
    );
    assert_eq!(
        ids.iter()
            .filter(|id| **id == "evt_wamid-once.contact-created")
            .count(),
        2,
        "{ids:?}"
    );
    assert_eq!(harness.metrics.resolutions(Channel::Whatsapp, "replayed"), 1);
    // The profile came from the channel, the phone in E.164.
    let client = harness.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT phone, first_name, last_name, display_name, channels, last_channel FROM contacts.contacts",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("+16505550100"));
    assert_eq!(row.get::<_, String>(1), "Ada");
    assert_eq!(row.get::<_, String>(2), "Lovelace");
    assert_eq!(row.get::<_, String>(3), "Ada Lovelace");
    assert_eq!(row.get::<_, Vec<String>>(4), vec!["whatsapp".to_owned()]);
    assert_eq!(row.get::<_, Option<String>>(5).as_deref(), Some("whatsapp"));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_monthly_quota_new_contacts_are_parked_existing_ones_served_and_a_new_month_resets() {
    let harness = Harness::start().await;
    harness
        .execute(&format!(
            "INSERT INTO contacts.quotas (workspace_id, channel, monthly_limit) VALUES ('{WORKSPACE}', 'whatsapp', 2)"
        ))
        .await;
    let november = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    harness
        .handle(&Event::whatsapp("16505550001", "a1").at(november).envelope())
        .await;
    harness
        .handle(&Event::whatsapp("16505550002", "b1").at(november).envelope())
        .await;
    // A writes again: counted once.
    harness
        .handle(&Event::whatsapp("16505550001", "a2").at(november).envelope())
        .await;
    // C is the third new contact: refused, parked with the reason.
    let refused = Event::whatsapp("16505550003", "c1").at(november).envelope();
    harness.handle(&refused).await;
    assert_eq!(harness.sql_i64("SELECT count(*) FROM contacts.contacts").await, 2);
    assert!(
        harness
            .contact_of(WHATSAPP_ACCOUNT, "16505550003")
            .await
            .is_none()
    );
    let client = harness.pool.get().await.unwrap();
    let held = client
        .query_one(
            "SELECT event_id, reason, envelope, contact_id FROM contacts.held_events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(held.get::<_, String>(0), "evt_c1");
    assert_eq!(held.get::<_, String>(1), "quota_exceeded");
    assert_eq!(
        Envelope::decode(held.get::<_, Vec<u8>>(2).as_slice()).unwrap(),
        refused,
        "the whole event is kept"
    );
    assert!(held.get::<_, Option<String>>(3).is_none());
    assert_eq!(
        harness.metrics.resolutions(Channel::Whatsapp, "quota_exceeded"),
        1
    );
    // Existing contacts keep being served at the quota.
    harness
        .handle(&Event::whatsapp("16505550002", "b2").at(november).envelope())
        .await;
    assert_eq!(harness.metrics.resolutions(Channel::Whatsapp, "existing"), 2);
    // Another channel has its own quota (none here).
    harness
        .handle(
            &Event::message(Channel::Telegram, TELEGRAM_ACCOUNT, "777", "t1")
                .at(november)
                .envelope(),
        )
        .await;
    assert_eq!(harness.sql_i64("SELECT count(*) FROM contacts.contacts").await, 3);
    // December: the count starts again, so C becomes a contact.
    let december = at("2026-12-01T00:00:05Z");
    harness
        .handle(&Event::whatsapp("16505550003", "c2").at(december).envelope())
        .await;
    assert!(
        harness
            .contact_of(WHATSAPP_ACCOUNT, "16505550003")
            .await
            .is_some()
    );
    assert_eq!(
        harness
            .sql_i64("SELECT sum(contacts)::bigint FROM contacts.monthly_usage WHERE channel = 'whatsapp' AND month = '2026-11-01'")
            .await,
        2
    );
    assert_eq!(
        harness
            .sql_i64("SELECT sum(contacts)::bigint FROM contacts.monthly_usage WHERE channel = 'whatsapp' AND month = '2026-12-01'")
            .await,
        1
    );
    // The parked event reached no one (of everything routing has handled).
    let routed_ids: HashSet<String> = harness
        .routed_all()
        .await
        .iter()
        .map(|envelope| envelope.event_id.clone())
        .collect();
    assert!(!routed_ids.contains("evt_c1"), "{routed_ids:?}");
    assert!(routed_ids.contains("evt_c2"));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contacts_events_are_dropped_with_a_record_and_consent_still_applies() {
    let harness = Harness::start().await;
    harness
        .handle(&Event::message(Channel::Sms, SMS_ACCOUNT, "+14155550123", "s1").envelope())
        .await;
    let contact = harness.contact_of(SMS_ACCOUNT, "+14155550123").await.unwrap();
    harness
        .execute(&format!(
            "UPDATE contacts.contacts SET blocked = true, blocked_at = now() WHERE id = '{contact}'"
        ))
        .await;
    harness
        .handle(&Event::message(Channel::Sms, SMS_ACCOUNT, "+14155550123", "s2").envelope())
        .await;
    let stop =
        Event::message(Channel::Sms, SMS_ACCOUNT, "+14155550123", "s3").kind(Kind::Consent(ConsentChange {
            action: ConsentAction::OptOut as i32,
            keyword: "STOP".to_owned(),
        }));
    harness.handle(&stop.envelope()).await;
    assert_eq!(
        harness
            .sql_i64(
                "SELECT count(*) FROM contacts.held_events WHERE reason = 'blocked' AND envelope IS NULL"
            )
            .await,
        2,
        "dropped with a record, no body kept"
    );
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.contacts WHERE sms_opted_out AND phone = '+14155550123'")
            .await,
        1,
        "the opt-out is honoured even while blocked"
    );
    // Only the first message went on.
    let routed = harness.routed(2).await;
    let ids: Vec<String> = harness
        .routed_all()
        .await
        .iter()
        .map(|envelope| envelope.event_id.clone())
        .collect();
    assert_eq!(routed.len(), 2);
    assert!(
        ids.contains(&"evt_s1".to_owned()) && !ids.contains(&"evt_s2".to_owned()),
        "{ids:?}"
    );
    assert_eq!(harness.metrics.resolutions(Channel::Sms, "blocked"), 2);

    // Telegram: the user blocking the bot unsubscribes the contact, unblocking subscribes it.
    let blocked =
        Event::message(Channel::Telegram, TELEGRAM_ACCOUNT, "42", "t1").kind(Kind::Consent(ConsentChange {
            action: ConsentAction::BotBlocked as i32,
            keyword: String::new(),
        }));
    harness.handle(&blocked.envelope()).await;
    let client = harness.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT bot_subscribed, bot_subscription_source FROM contacts.contacts c
             JOIN contacts.identities i ON i.contact_id = c.id WHERE i.channel_user_id = '42'",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "telegram:bot_blocked");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_phone_on_another_channel_links_only_by_rule_and_is_suggested_otherwise() {
    let harness = Harness::start().await;
    harness
        .handle(&Event::whatsapp("14155550123", "w1").envelope())
        .await;
    // No rule: a second contact, and a merge suggestion.
    harness
        .handle(&Event::message(Channel::Sms, SMS_ACCOUNT, "+14155550123", "s1").envelope())
        .await;
    let whatsapp = harness.contact_of(WHATSAPP_ACCOUNT, "14155550123").await.unwrap();
    let sms = harness.contact_of(SMS_ACCOUNT, "+14155550123").await.unwrap();
    assert_ne!(whatsapp, sms);
    let client = harness.pool.get().await.unwrap();
    let suggestion = client
        .query_one(
            "SELECT contact_id, candidate_id, reason FROM contacts.merge_suggestions",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(suggestion.get::<_, String>(0), sms);
    assert_eq!(suggestion.get::<_, String>(1), whatsapp);
    assert_eq!(suggestion.get::<_, String>(2), "same_phone");

    // With the rule, a new identity with that phone joins the oldest contact.
    harness
        .execute(&format!(
            "INSERT INTO contacts.settings (workspace_id, link_by_phone) VALUES ('{WORKSPACE}', true)"
        ))
        .await;
    harness
        .handle(&Event::message(Channel::Sms, "chacc_sms2", "+1 415 555 0123", "s2").envelope())
        .await;
    assert_eq!(
        harness.contact_of("chacc_sms2", "+1 415 555 0123").await.unwrap(),
        whatsapp
    );
    assert_eq!(harness.metrics.resolutions(Channel::Sms, "linked"), 1);
    let channels: Vec<String> = client
        .query_one(
            "SELECT channels FROM contacts.contacts WHERE id = $1",
            &[&whatsapp],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(channels, vec!["whatsapp".to_owned(), "sms".to_owned()]);

    // A phone typed into a web chat form is nobody's proof: even with the rule, it makes a
    // contact of its own (with that phone) and only a suggestion.
    let mut typed = Event::message(Channel::Webchat, "chacc_web", "wcv_typed", "wc1");
    typed.sender.phone_e164 = "+14155550123".to_owned();
    typed.sender.contact_fields_unverified = true;
    harness.handle(&typed.envelope()).await;
    let visitor = harness.contact_of("chacc_web", "wcv_typed").await.unwrap();
    assert_ne!(visitor, whatsapp);
    let phone: Option<String> = client
        .query_one("SELECT phone FROM contacts.contacts WHERE id = $1", &[&visitor])
        .await
        .unwrap()
        .get(0);
    assert_eq!(phone.as_deref(), Some("+14155550123"));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_left_to_delivery_and_old_events_do_not_resurrect_an_erased_contact() {
    let harness = Harness::start().await;
    let receipt = |sender: &str, id: &str| {
        Event::whatsapp(sender, id)
            .kind(Kind::Status(StatusReceipt {
                provider_message_id: format!("wamid-out-{id}"),
                ..StatusReceipt::default()
            }))
            .envelope()
    };
    // About a sender nobody knows: no contact.
    harness.handle(&receipt("16505550999", "r1")).await;
    assert_eq!(harness.sql_i64("SELECT count(*) FROM contacts.contacts").await, 0);

    let first = Event::whatsapp("16505550998", "m1").envelope();
    harness.handle(&first).await;
    // About a known contact: counted, not passed on (delivery applies receipts; routing
    // keeps none), and nothing recorded.
    harness.handle(&receipt("16505550998", "r2")).await;
    let routed = harness.routed_all().await;
    assert_eq!(
        routed.iter().filter_map(resolved).count(),
        1,
        "only the message went on to routing: {routed:?}"
    );
    assert_eq!(harness.metrics.resolutions(Channel::Whatsapp, "receipt"), 2);
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.processed_events WHERE event_id LIKE 'evt_r%'")
            .await,
        0
    );

    let contact = harness.contact_of(WHATSAPP_ACCOUNT, "16505550998").await.unwrap();
    harness
        .execute(&format!("DELETE FROM contacts.contacts WHERE id = '{contact}'"))
        .await;
    // The provider retries the old webhook after the erasure.
    harness.handle(&first).await;
    assert_eq!(harness.sql_i64("SELECT count(*) FROM contacts.contacts").await, 0);
    assert_eq!(harness.metrics.resolutions(Channel::Whatsapp, "erased"), 1);
    harness.stop().await;
}

fn batch_of(envelopes: &[Envelope]) -> Vec<Batched> {
    envelopes
        .iter()
        .map(|envelope| Batched {
            message: incoming(envelope),
            span: tracing::Span::none(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_resolves_as_one_by_one_would_and_sends_back_an_event_that_needs_its_own_transaction() {
    let harness = Harness::start().await;
    // Ten senders, three messages each, interleaved as a partition delivers them, and a
    // redelivery of the first event inside the same batch.
    let mut envelopes = Vec::new();
    for n in 0..3 {
        for sender in 0..10 {
            envelopes
                .push(Event::whatsapp(&format!("1650555{sender:04}"), &format!("b-{sender}-{n}")).envelope());
        }
    }
    envelopes.push(envelopes[0].clone());
    harness
        .resolver
        .handle_batch(&batch_of(&envelopes))
        .await
        .unwrap();
    assert_eq!(
        harness.sql_i64("SELECT count(*) FROM contacts.contacts").await,
        10
    );
    assert_eq!(
        harness.sql_i64("SELECT count(*) FROM contacts.identities").await,
        10
    );
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.processed_events")
            .await,
        30
    );
    assert_eq!(
        harness
            .sql_i64("SELECT sum(contacts)::bigint FROM contacts.monthly_usage")
            .await,
        10,
        "each new contact counted once"
    );
    let routed = harness.routed_all().await;
    let mut per_contact: HashMap<String, Vec<String>> = HashMap::new();
    let mut new_contacts = HashSet::new();
    for envelope in &routed {
        if let Some((contact, new_contact)) = resolved(envelope) {
            per_contact
                .entry(contact.clone())
                .or_default()
                .push(envelope.event_id.clone());
            if new_contact {
                new_contacts.insert(contact);
            }
        }
    }
    assert_eq!(per_contact.len(), 10);
    assert_eq!(new_contacts.len(), 10);
    for (contact, forwarded) in per_contact {
        // A redelivery is forwarded again with the same id (routing dedupes): count each once.
        let mut ids: Vec<String> = Vec::new();
        for id in forwarded {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let sender = ids[0]
            .trim_start_matches("evt_b-")
            .split('-')
            .next()
            .unwrap()
            .to_owned();
        let expected: Vec<String> = (0..3).map(|n| format!("evt_b-{sender}-{n}")).collect();
        assert_eq!(
            ids, expected,
            "{contact}: each sender's events in order, each once"
        );
    }

    // A new sender over the monthly quota needs a transaction of its own: the batch fails whole,
    // leaving nothing, and the consumer hands its events over one by one.
    harness
        .execute(&format!(
            "INSERT INTO contacts.quotas (workspace_id, channel, monthly_limit) VALUES ('{WORKSPACE}', 'whatsapp', 10)"
        ))
        .await;
    let second = [
        Event::whatsapp("16505550000", "known-again").envelope(),
        Event::whatsapp("16505559999", "over-quota").envelope(),
    ];
    assert!(harness.resolver.handle_batch(&batch_of(&second)).await.is_err());
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.processed_events")
            .await,
        30
    );
    for envelope in &second {
        harness.handle(envelope).await;
    }
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.processed_events")
            .await,
        32
    );
    assert_eq!(
        harness
            .sql_i64("SELECT count(*) FROM contacts.held_events WHERE reason = 'quota_exceeded'")
            .await,
        1
    );
    harness.stop().await;
}
