use switchboard_e2e::{isolated_env, run_to_end};
use switchboard_testkit::TestDatabase;

fn with(mut env: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    env.retain(|(existing, _)| existing != key);
    env.push((key.to_owned(), value.to_owned()));
    env
}

#[tokio::test]
async fn bad_configuration_fails_start_with_exit_code_64_and_a_message_naming_the_key() {
    let database = TestDatabase::create().await.unwrap();
    let env = isolated_env(&database);
    let cases = [
        (
            with(env.clone(), "SWITCHBOARD__BUS__PARTITIONS", "0"),
            "bus.partitions",
        ),
        (
            with(env.clone(), "SWITCHBOARD__BUS__FAMILY_PARTITIONS__INBOUND", "300"),
            "bus.family_partitions.inbound",
        ),
        (with(env.clone(), "DATABASE_URL", "mysql://nope"), "database.url"),
        (
            with(env.clone(), "SWITCHBOARD_HTTP_ADDR", "not-an-address"),
            "http_addr",
        ),
        (
            with(env.clone(), "SWITCHBOARD_BOOTSTRAP_TOKEN", "short"),
            "bootstrap_token",
        ),
        (
            with(env.clone(), "SWITCHBOARD__SHUTDOWN__DRAIN_DELAY", "soon"),
            "drain_delay",
        ),
        (
            with(
                env.clone(),
                "SWITCHBOARD_CHANNELS_FILE",
                "/nonexistent/channels.yaml",
            ),
            "channels_file",
        ),
    ];
    for (env, key) in cases {
        let (status, _, stderr) = run_to_end(&[], &env);
        assert_eq!(status.code(), Some(64), "{key}: {stderr}");
        assert!(
            stderr.contains("configuration error") && stderr.to_lowercase().contains(key),
            "{key}: {stderr}"
        );
    }
    let (status, _, stderr) = run_to_end(&["--target", "contactz"], &env);
    assert_eq!(status.code(), Some(64));
    assert!(stderr.contains("unknown target \"contactz\""), "{stderr}");
}

#[tokio::test]
async fn a_config_file_with_an_unknown_key_is_refused() {
    let database = TestDatabase::create().await.unwrap();
    let file = std::env::temp_dir().join(format!("sb-{}.toml", switchboard_testkit::unique_token()));
    std::fs::write(&file, "[server]\nhttp_adress = \"0.0.0.0:80\"\n").unwrap();
    let (status, _, stderr) = run_to_end(&["--config", file.to_str().unwrap()], &isolated_env(&database));
    std::fs::remove_file(&file).unwrap();
    assert_eq!(status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("http_adress"), "{stderr}");
}

#[tokio::test]
async fn print_config_never_shows_secrets() {
    let database = TestDatabase::create().await.unwrap();
    let env = isolated_env(&database);
    let (status, stdout, stderr) = run_to_end(&["print-config"], &env);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("[redacted]"));
    assert!(!stdout.contains(switchboard_e2e::BOOTSTRAP_TOKEN));
    assert!(!stdout.contains(switchboard_e2e::INTERNAL_TOKEN));
    assert!(
        !stdout.contains(&database.name),
        "the database url is a secret (it may carry a password)"
    );
    assert!(!stdout.contains("guest:guest"));
}
