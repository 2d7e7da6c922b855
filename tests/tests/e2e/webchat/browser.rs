//! The demo page in a real browser: headless Chromium (Debian's package) driven by
//! playwright-core from `tests/browser`, against the running binary. The screenshot is kept
//! as a test artifact in `target/test-artifacts/webchat-demo.png`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::Chat;
use switchboard_e2e::webhooks::WEBCHAT;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository")
        .to_path_buf()
}

#[tokio::test]
async fn webchat_demo_page_works_in_headless_chromium() {
    let browser_dir = repository().join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        PathBuf::from(&chromium).exists() && browser_dir.join("node_modules/playwright-core").exists(),
        "the browser test needs Chromium at {chromium} and playwright-core in tests/browser: run scripts/ensure-browser.sh (make test does)"
    );
    let artifacts = repository().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifact directory");
    let screenshot = artifacts.join("webchat-demo.png");
    let _ = std::fs::remove_file(&screenshot);

    let chat = Chat::start(&[]).await;
    let token = switchboard_testkit::unique_token();
    let visitor_text = format!("Hello from Chromium {token}");
    let agent_text = format!("An agent answers {token}");
    let mut node = tokio::process::Command::new("node")
        .arg("webchat-demo.mjs")
        .current_dir(&browser_dir)
        .env(
            "DEMO_URL",
            format!("{}/webchat/{}/demo", chat.http_base(), WEBCHAT.0),
        )
        .env("VISITOR_NAME", "Grace Hopper")
        .env("VISITOR_TEXT", &visitor_text)
        .env("AGENT_TEXT", &agent_text)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", &chromium)
        .env("TIMEOUT_MS", "60000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install Node.js: scripts/ensure-browser.sh)");
    let mut lines = BufReader::new(node.stdout.take().expect("stdout")).lines();
    let mut steps = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("node output") {
            let step: serde_json::Value =
                serde_json::from_str(&line).unwrap_or(serde_json::json!({"raw": line}));
            steps.push(step.clone());
            match step["step"].as_str() {
                // The visitor's message is in: answer it as an agent, through delivery.
                Some("sent") => {
                    let wcm: String = switchboard_testkit::eventually(
                        Duration::from_secs(30),
                        "the visitor's message stored",
                        || async {
                            chat.db
                                .query_opt(
                                    "SELECT id FROM webchat.messages WHERE body = $1",
                                    &[&visitor_text],
                                )
                                .await
                                .unwrap()
                                .map(|row| row.get::<_, String>(0))
                        },
                    )
                    .await;
                    let conversation = chat.conversation_of(&wcm).await;
                    chat.agent_reply(&conversation, &agent_text).await;
                }
                Some("history_seen") | Some("failed") => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .unwrap_or_else(|_| panic!("the browser run did not finish; steps so far: {steps:#?}"));
    let status = node.wait().await.expect("node exits");
    assert!(status.success(), "the browser run failed: {steps:#?}");
    assert_eq!(
        steps.last().and_then(|s| s["step"].as_str()),
        Some("history_seen"),
        "{steps:#?}"
    );
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
    println!("screenshot: {}", screenshot.display());
    chat.hooks.cleanup().await;
}
