//! Property test: the SQL from `filter::to_sql` selects exactly the contacts that
//! `filter::matches` accepts, on real PostgreSQL.
//!
//! It creates a scratch database `sb_filter_<unique>` through the server's `postgres` database,
//! applies the contacts migration in schema `contacts`, inserts ~200 random contacts, compares
//! random filters, and drops the database. Server: `SWITCHBOARD_TEST_DATABASE_URL`
//! (default `host=127.0.0.1 port=5432 user=postgres`).

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use switchboard_contacts::filter::*;

type TestResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const MIGRATION: &str = include_str!("../migrations/0001_initial.sql");
const WORKSPACE: &str = "ten_filter_test";
const CONTACT_COUNT: usize = 200;
const SINGLE_CONDITION_CASES: u32 = 1000;
const NESTED_FILTER_CASES: u32 = 256;

/// The reference time: sub-microsecond digits on purpose (SQL and evaluator truncate alike).
fn now() -> DateTime<Utc> {
    whole_second_now() + TimeDelta::nanoseconds(123_456_789)
}

fn whole_second_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0)
        .single()
        .expect("a valid time")
}

fn custom_fields() -> HashMap<String, FieldType> {
    [
        ("plan", FieldType::SingleSelect),
        ("score", FieldType::Number),
        ("birthday", FieldType::Date),
        ("renewal", FieldType::Datetime),
        ("interests", FieldType::MultiSelect),
        ("newsletter", FieldType::Boolean),
        ("note", FieldType::Text),
    ]
    .into_iter()
    .map(|(key, field_type)| (key.to_owned(), field_type))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_sql_selects_exactly_the_contacts_the_evaluator_matches() -> TestResult<()> {
    let database = ScratchDatabase::create().await?;
    let outcome = compare_sql_with_evaluator(&database.client).await;
    database.drop_database().await?;
    outcome
}

async fn compare_sql_with_evaluator(client: &Client) -> TestResult<()> {
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let contacts = proptest::collection::vec(contact_strategy(), CONTACT_COUNT)
        .new_tree(&mut runner)
        .map_err(|reason| format!("generating contacts: {reason}"))?
        .current();
    for (index, contact) in contacts.iter().enumerate() {
        insert_contact(client, &format!("ct_{index:03}"), contact).await?;
    }
    let stored = load_contacts(client).await?;
    assert_eq!(stored.len(), CONTACT_COUNT);

    let handle = tokio::runtime::Handle::current();
    let fields = custom_fields();
    for (label, strategy, cases) in [
        ("single conditions", condition_strategy(), SINGLE_CONDITION_CASES),
        ("nested filters", nested_filter_strategy(), NESTED_FILTER_CASES),
    ] {
        let split_results = Cell::new(0_usize);
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&strategy, |filter| {
            let selected =
                tokio::task::block_in_place(|| handle.block_on(select_ids(client, &filter, &fields)))
                    .map_err(|error| TestCaseError::fail(format!("query failed: {error:?}")))?;
            let matched: BTreeSet<String> = stored
                .iter()
                .filter(|(_, contact)| matches(&filter, contact, &fields, now()))
                .map(|(id, _)| id.clone())
                .collect();
            if selected != matched {
                return Err(TestCaseError::fail(describe_mismatch(
                    &filter, &fields, &stored, &selected, &matched,
                )));
            }
            if !matched.is_empty() && matched.len() < stored.len() {
                split_results.set(split_results.get() + 1);
            }
            Ok(())
        });
        outcome.map_err(|error| format!("{label}: {error}"))?;
        let split = split_results.get();
        eprintln!("{label}: {split} of {cases} filters selected some but not all contacts");
        assert!(
            split * 4 >= cases as usize,
            "{label}: too few filters split the contacts ({split})"
        );
    }
    Ok(())
}

async fn select_ids(
    client: &Client,
    filter: &Filter,
    fields: &HashMap<String, FieldType>,
) -> TestResult<BTreeSet<String>> {
    let compiled = to_sql(filter, fields, "c", 2, now())?;
    let sql = format!(
        "SELECT c.id FROM contacts.contacts c WHERE c.workspace_id = $1 AND c.merged_into IS NULL AND ({})",
        compiled.sql
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&WORKSPACE];
    params.extend(compiled.param_refs());
    let rows = client.query(&sql, &params).await?;
    Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
}

fn describe_mismatch(
    filter: &Filter,
    fields: &HashMap<String, FieldType>,
    stored: &[(String, ContactView)],
    selected: &BTreeSet<String>,
    matched: &BTreeSet<String>,
) -> String {
    let sql = to_sql(filter, fields, "c", 2, now())
        .map(|compiled| compiled.sql)
        .unwrap_or_default();
    let mut message = format!(
        "filter {}\nsql {sql}\n",
        serde_json::to_string(filter).unwrap_or_default()
    );
    for (id, contact) in stored {
        let in_sql = selected.contains(id);
        if in_sql != matched.contains(id) {
            message.push_str(&format!(
                "{id}: sql {in_sql}, evaluator {}: {contact:?}\n",
                !in_sql
            ));
        }
    }
    message
}

// ---------------------------------------------------------------------------------------------
// Scratch database
// ---------------------------------------------------------------------------------------------

struct ScratchDatabase {
    admin: Client,
    client: Client,
    name: String,
}

impl ScratchDatabase {
    async fn create() -> TestResult<Self> {
        let url = std::env::var("SWITCHBOARD_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".to_owned());
        let mut config: tokio_postgres::Config = url.parse()?;
        let admin = connect(config.dbname("postgres")).await?;
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let name = format!("sb_filter_{}_{}", since_epoch.as_nanos(), std::process::id());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let client = connect(config.dbname(&name)).await?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA contacts; SET search_path TO contacts;\n{MIGRATION}"
            ))
            .await?;
        Ok(Self { admin, client, name })
    }

    async fn drop_database(self) -> TestResult<()> {
        drop(self.client);
        self.admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await?;
        Ok(())
    }
}

async fn connect(config: &tokio_postgres::Config) -> TestResult<Client> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("postgres connection ended: {error}");
        }
    });
    Ok(client)
}

async fn insert_contact(client: &Client, id: &str, contact: &ContactView) -> TestResult<()> {
    let custom_fields = Value::Object(contact.custom_fields.clone());
    client
        .execute(
            "INSERT INTO contacts.contacts (id, workspace_id, first_name, last_name, display_name, email, \
             phone, username, locale, last_channel, assignee_id, custom_fields, tags, channels, blocked, \
             bot_subscribed, created_at, last_inbound_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            &[
                &id,
                &WORKSPACE,
                &contact.first_name,
                &contact.last_name,
                &contact.display_name,
                &contact.email,
                &contact.phone,
                &contact.username,
                &contact.locale,
                &contact.last_channel,
                &contact.assignee_id,
                &custom_fields,
                &contact.tags,
                &contact.channels,
                &contact.blocked,
                &contact.bot_subscribed,
                &contact.created_at,
                &contact.last_inbound_at,
            ],
        )
        .await?;
    Ok(())
}

/// The contacts as PostgreSQL stores them (times in microseconds, jsonb normalized).
async fn load_contacts(client: &Client) -> TestResult<Vec<(String, ContactView)>> {
    let rows = client
        .query(
            "SELECT id, first_name, last_name, display_name, email, phone, username, locale, last_channel, \
             assignee_id, custom_fields, tags, channels, blocked, bot_subscribed, created_at, last_inbound_at \
             FROM contacts.contacts WHERE workspace_id = $1 ORDER BY id",
            &[&WORKSPACE],
        )
        .await?;
    let mut contacts = Vec::with_capacity(rows.len());
    for row in rows {
        let Value::Object(custom_fields) = row.try_get::<_, Value>("custom_fields")? else {
            return Err("custom_fields is not an object".into());
        };
        let contact = ContactView {
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            display_name: row.try_get("display_name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            username: row.try_get("username")?,
            locale: row.try_get("locale")?,
            last_channel: row.try_get("last_channel")?,
            assignee_id: row.try_get("assignee_id")?,
            custom_fields,
            tags: row.try_get("tags")?,
            channels: row.try_get("channels")?,
            blocked: row.try_get("blocked")?,
            bot_subscribed: row.try_get("bot_subscribed")?,
            created_at: row.try_get("created_at")?,
            last_inbound_at: row.try_get("last_inbound_at")?,
        };
        contacts.push((row.try_get("id")?, contact));
    }
    Ok(contacts)
}

// ---------------------------------------------------------------------------------------------
// Contacts: small alphabets so that conditions hit
// ---------------------------------------------------------------------------------------------

const NAMES: &[&str] = &["", "Ann", "ann", "ANNA", "Bob", "bob", "Zoë", "ZOË", "zoe", "Li"];
const EMAILS: &[&str] = &["ann@example.com", "Bob@Example.ORG", "zoë@mail.test", ""];
const PHONES: &[&str] = &["+15550001", "+4930123", ""];
const USERNAMES: &[&str] = &["ann", "BOB_1", "z"];
const LOCALES: &[&str] = &["en", "EN", "de", "pt-BR"];
const CHANNELS: &[&str] = &["whatsapp", "telegram", "messenger"];
const LAST_CHANNELS: &[&str] = &["whatsapp", "WhatsApp", "telegram"];
const ASSIGNEES: &[&str] = &["usr_1", "USR_1", "usr_2"];
const TAGS: &[&str] = &["vip", "lead", "churned", "new"];
const PLANS: &[&str] = &["free", "pro", "Pro", "enterprise"];
const INTERESTS: &[&str] = &["music", "sport", "art", "Music"];
const NOTES: &[&str] = &["hello world", "Hello", "ZOË notes", ""];
const NUMBERS: &[f64] = &[
    -1.0,
    -0.0,
    0.0,
    0.1,
    0.30000000000000004,
    1.5,
    2.0,
    7.0,
    10.0,
    1e20,
];

fn words(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
    select(choices).prop_map(str::to_owned)
}

fn maybe_word(choices: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(words(choices))
}

fn word_set(choices: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    subsequence(choices, 0..=choices.len()).prop_map(|chosen| chosen.into_iter().map(str::to_owned).collect())
}

/// A time on an hour grid around `now`, sometimes a microsecond off or on `now`'s fraction.
fn contact_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0_i64..48, select(&[0_i64, 0, 1, -1, 123_456][..])).prop_map(|(hours, micros)| {
        whole_second_now() - TimeDelta::hours(hours) + TimeDelta::microseconds(micros)
    })
}

fn stored_datetime() -> impl Strategy<Value = Value> {
    (-24_i64..48).prop_map(|hours| {
        json!(
            (whole_second_now() - TimeDelta::hours(hours))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        )
    })
}

fn stored_date() -> impl Strategy<Value = Value> {
    (-10_i64..40).prop_map(|days| {
        json!(
            (whole_second_now() - TimeDelta::days(days))
                .format("%Y-%m-%d")
                .to_string()
        )
    })
}

/// A custom value: mostly well typed, sometimes of the wrong JSON type or `null`.
fn custom_value(well_typed: BoxedStrategy<Value>, odd: Value) -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![6 => well_typed, 1 => Just(odd), 1 => Just(Value::Null)])
}

fn custom_fields_strategy() -> impl Strategy<Value = Map<String, Value>> {
    (
        custom_value(words(PLANS).prop_map(Value::from).boxed(), json!(3)),
        custom_value(
            select(NUMBERS).prop_map(|number| json!(number)).boxed(),
            json!("7"),
        ),
        custom_value(stored_date().boxed(), json!(19_900_101)),
        custom_value(stored_datetime().boxed(), json!("")),
        custom_value(
            word_set(INTERESTS).prop_map(|chosen| json!(chosen)).boxed(),
            json!("music"),
        ),
        custom_value(any::<bool>().prop_map(Value::from).boxed(), json!("yes")),
        custom_value(words(NOTES).prop_map(Value::from).boxed(), json!(["hello"])),
    )
        .prop_map(|(plan, score, birthday, renewal, interests, newsletter, note)| {
            let values = [
                ("plan", plan),
                ("score", score),
                ("birthday", birthday),
                ("renewal", renewal),
                ("interests", interests),
                ("newsletter", newsletter),
                ("note", note),
            ];
            values
                .into_iter()
                .filter_map(|(key, value)| Some((key.to_owned(), value?)))
                .collect()
        })
}

fn contact_strategy() -> impl Strategy<Value = ContactView> {
    let names = (words(NAMES), words(NAMES), words(NAMES));
    let reachability = (
        maybe_word(EMAILS),
        maybe_word(PHONES),
        maybe_word(USERNAMES),
        maybe_word(LOCALES),
    );
    let routing = (
        maybe_word(LAST_CHANNELS),
        maybe_word(ASSIGNEES),
        word_set(TAGS),
        word_set(CHANNELS),
    );
    let state = (
        any::<bool>(),
        any::<bool>(),
        contact_time(),
        proptest::option::of(contact_time()),
    );
    (names, reachability, routing, state, custom_fields_strategy()).prop_map(
        |(names, reachability, routing, state, custom_fields)| ContactView {
            first_name: names.0,
            last_name: names.1,
            display_name: names.2,
            email: reachability.0,
            phone: reachability.1,
            username: reachability.2,
            locale: reachability.3,
            last_channel: routing.0,
            assignee_id: routing.1,
            tags: routing.2,
            channels: routing.3,
            blocked: state.0,
            bot_subscribed: state.1,
            created_at: state.2,
            last_inbound_at: state.3,
            custom_fields,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Filters: every operator valid for each field
// ---------------------------------------------------------------------------------------------

fn condition(field: &str, op: Operator, value: FilterValue) -> Filter {
    Filter::Condition(Condition {
        field: field.parse().expect("a known field"),
        op,
        value,
    })
}

fn texts(chosen: Vec<&str>) -> FilterValue {
    FilterValue::List(chosen.into_iter().map(str::to_owned).collect())
}

fn is_set_condition(field: &'static str) -> BoxedStrategy<Filter> {
    select(&[Operator::IsSet, Operator::IsNotSet][..])
        .prop_map(move |op| condition(field, op, FilterValue::None))
        .boxed()
}

fn list_condition(
    field: &'static str,
    ops: &'static [Operator],
    values: &'static [&'static str],
) -> BoxedStrategy<Filter> {
    (select(ops), subsequence(values, 1..=3.min(values.len())))
        .prop_map(move |(op, chosen)| condition(field, op, texts(chosen)))
        .boxed()
}

fn single_text_condition(
    field: &'static str,
    ops: &'static [Operator],
    values: &'static [&'static str],
) -> BoxedStrategy<Filter> {
    (select(ops), select(values))
        .prop_map(move |(op, value)| condition(field, op, FilterValue::Text(value.to_owned())))
        .boxed()
}

const FREE_TEXT: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Contains,
    Operator::NotContains,
    Operator::StartsWith,
];
const EXACT_TEXT: &[Operator] = &[Operator::Eq, Operator::Ne];
const IN_LIST: &[Operator] = &[Operator::In, Operator::NotIn];
const HAS: &[Operator] = &[Operator::HasAny, Operator::HasAll, Operator::HasNone];
const ORDER: &[Operator] = &[Operator::Gt, Operator::Gte, Operator::Lt, Operator::Lte];
const WITHIN: &[Operator] = &[Operator::WithinLast, Operator::NotWithinLast];
const NUMBER_OPS: &[Operator] = &[
    Operator::Eq,
    Operator::Ne,
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
];

const NAME_NEEDLES: &[&str] = &["ann", "ANN", "an", "Zo", "zoë", "ë", "bob", "li", "x"];
const EMAIL_NEEDLES: &[&str] = &[
    "ann@example.com",
    "example",
    "EXAMPLE.ORG",
    "zoë",
    "@",
    "bob@example.org",
];
const PHONE_NEEDLES: &[&str] = &["+1555", "+15550001", "0123", "+4930123"];
const USERNAME_NEEDLES: &[&str] = &["ann", "bob", "BOB_1", "z"];
const NOTE_NEEDLES: &[&str] = &["hello", "HELLO WORLD", "zoë", "notes", "o"];
const LOCALE_NEEDLES: &[&str] = &["en", "de", "PT-BR", "fr"];
const ASSIGNEE_NEEDLES: &[&str] = &["usr_1", "usr_2", "usr_3"];
const CHANNEL_NEEDLES: &[&str] = &["whatsapp", "telegram", "messenger", "WhatsApp"];
const PLAN_NEEDLES: &[&str] = &["free", "pro", "enterprise", "PRO"];
const TAG_NEEDLES: &[&str] = &["vip", "lead", "churned", "new", "VIP"];
const INTEREST_NEEDLES: &[&str] = &["music", "sport", "art", "Music", "dance"];

fn free_text_conditions(field: &'static str, needles: &'static [&'static str]) -> BoxedStrategy<Filter> {
    prop_oneof![
        3 => single_text_condition(field, FREE_TEXT, needles),
        1 => list_condition(field, IN_LIST, needles),
        1 => is_set_condition(field),
    ]
    .boxed()
}

fn exact_text_conditions(field: &'static str, needles: &'static [&'static str]) -> BoxedStrategy<Filter> {
    prop_oneof![
        single_text_condition(field, EXACT_TEXT, needles),
        list_condition(field, IN_LIST, needles),
        is_set_condition(field),
    ]
    .boxed()
}

fn array_conditions(field: &'static str, needles: &'static [&'static str]) -> BoxedStrategy<Filter> {
    prop_oneof![
        1 => single_text_condition(field, EXACT_TEXT, needles),
        2 => list_condition(field, HAS, needles),
        1 => is_set_condition(field),
    ]
    .boxed()
}

/// A filter time on the contacts' hour grid, sometimes off by a fraction of a second.
fn filter_time() -> impl Strategy<Value = FilterValue> {
    (
        -24_i64..48,
        select(&[0_i64, 0, 1_000, -1_000, 999, 500_000_000, 123_456_789][..]),
    )
        .prop_map(|(hours, nanos)| {
            FilterValue::Time(whole_second_now() - TimeDelta::hours(hours) + TimeDelta::nanoseconds(nanos))
        })
}

/// A duration on the hour grid, sometimes with nanoseconds around `now`'s sub-microsecond part.
fn filter_duration() -> impl Strategy<Value = FilterValue> {
    (
        0_u64..72,
        select(&[0_u32, 789, 790, 1_000, 123_456_789, 123_456_790][..]),
    )
        .prop_map(|(hours, nanos)| FilterValue::Duration(Duration::new(hours * 3600, nanos)))
}

fn time_conditions(field: &'static str, optional: bool) -> BoxedStrategy<Filter> {
    let compare = (select(ORDER), filter_time()).prop_map(move |(op, time)| condition(field, op, time));
    let within =
        (select(WITHIN), filter_duration()).prop_map(move |(op, duration)| condition(field, op, duration));
    if optional {
        prop_oneof![2 => compare, 2 => within, 1 => is_set_condition(field)].boxed()
    } else {
        prop_oneof![compare, within].boxed()
    }
}

fn date_conditions(field: &'static str) -> BoxedStrategy<Filter> {
    let dates = (-10_i64..40).prop_map(|days| {
        let date: NaiveDate = (whole_second_now() - TimeDelta::days(days)).date_naive();
        FilterValue::Date(date)
    });
    let durations = prop_oneof![
        (0_u64..40).prop_map(|days| FilterValue::Duration(Duration::from_secs(days * 86_400))),
        filter_duration(),
    ];
    prop_oneof![
        2 => (select(ORDER), dates).prop_map(move |(op, date)| condition(field, op, date)),
        2 => (select(WITHIN), durations).prop_map(move |(op, duration)| condition(field, op, duration)),
        1 => is_set_condition(field),
    ]
    .boxed()
}

fn flag_conditions(field: &'static str, optional: bool) -> BoxedStrategy<Filter> {
    let compare = (select(EXACT_TEXT), any::<bool>())
        .prop_map(move |(op, flag)| condition(field, op, FilterValue::Bool(flag)));
    if optional {
        prop_oneof![2 => compare, 1 => is_set_condition(field)].boxed()
    } else {
        compare.boxed()
    }
}

fn condition_strategy() -> BoxedStrategy<Filter> {
    let numbers = (select(NUMBER_OPS), select(NUMBERS))
        .prop_map(|(op, number)| condition("custom.score", op, FilterValue::Number(number)));
    prop_oneof![
        free_text_conditions("first_name", NAME_NEEDLES),
        free_text_conditions("last_name", NAME_NEEDLES),
        free_text_conditions("display_name", NAME_NEEDLES),
        free_text_conditions("name", NAME_NEEDLES),
        free_text_conditions("email", EMAIL_NEEDLES),
        free_text_conditions("phone", PHONE_NEEDLES),
        free_text_conditions("username", USERNAME_NEEDLES),
        free_text_conditions("custom.note", NOTE_NEEDLES),
        exact_text_conditions("locale", LOCALE_NEEDLES),
        exact_text_conditions("last_channel", CHANNEL_NEEDLES),
        exact_text_conditions("assignee_id", ASSIGNEE_NEEDLES),
        exact_text_conditions("custom.plan", PLAN_NEEDLES),
        array_conditions("tags", TAG_NEEDLES),
        array_conditions("channel", CHANNEL_NEEDLES),
        prop_oneof![
            list_condition("custom.interests", HAS, INTEREST_NEEDLES),
            is_set_condition("custom.interests")
        ],
        time_conditions("created_at", false),
        time_conditions("last_inbound_at", true),
        time_conditions("custom.renewal", true),
        date_conditions("custom.birthday"),
        prop_oneof![3 => numbers, 1 => is_set_condition("custom.score")],
        flag_conditions("blocked", false),
        flag_conditions("bot_subscribed", false),
        flag_conditions("custom.newsletter", true),
    ]
    .boxed()
}

fn nested_filter_strategy() -> BoxedStrategy<Filter> {
    condition_strategy()
        .prop_recursive(3, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Filter::All),
                proptest::collection::vec(inner, 0..4).prop_map(Filter::Any),
            ]
        })
        .boxed()
}
