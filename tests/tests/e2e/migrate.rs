use switchboard_e2e::{isolated_env, run_to_end};
use switchboard_testkit::TestDatabase;

#[tokio::test]
async fn migrate_from_two_processes_at_once_applies_each_migration_once() {
    let database = TestDatabase::create().await.unwrap();
    let env = isolated_env(&database);
    let first = {
        let env = env.clone();
        std::thread::spawn(move || run_to_end(&["migrate"], &env))
    };
    let second = {
        let env = env.clone();
        std::thread::spawn(move || run_to_end(&["migrate"], &env))
    };
    for run in [first, second] {
        let (status, stdout, stderr) = run.join().unwrap();
        assert!(status.success(), "{stdout}{stderr}");
    }
    // And once more: nothing to do.
    let (status, _, stderr) = run_to_end(&["migrate"], &env);
    assert!(status.success(), "{stderr}");

    let (client, connection) = tokio_postgres_connect(&database.url).await;
    let rows = client
        .query(
            "SELECT version FROM tenancy.schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(versions, vec![1]);
    drop(client);
    connection.abort();
}

/// What the Helm chart's migration Job has: `DATABASE_URL` and nothing else (no tokens, no bus).
#[tokio::test]
async fn migrate_needs_only_the_database_url() {
    let database = TestDatabase::create().await.unwrap();
    let env = vec![("DATABASE_URL".to_owned(), database.url.clone())];
    let (status, stdout, stderr) = run_to_end(&["migrate"], &env);
    assert!(status.success(), "{stdout}{stderr}");

    let client = database.connect().await;
    let rows = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname",
            &[&MIGRATED_SCHEMAS.to_vec()],
        )
        .await
        .unwrap();
    let schemas: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let mut expected: Vec<&str> = MIGRATED_SCHEMAS.to_vec();
    expected.sort_unstable();
    assert_eq!(schemas, expected);
}

/// The schemas `switchboard migrate` (`--target all`) creates.
const MIGRATED_SCHEMAS: [&str; 6] = ["tenancy", "contacts", "routing", "delivery", "ingress", "webchat"];

async fn tokio_postgres_connect(url: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, task)
}
