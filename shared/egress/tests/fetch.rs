//! The guard against real HTTP servers on loopback: refused unless allow-listed, after every
//! redirect and for names as well as literal addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use switchboard_egress::{EgressClient, EgressConfig, EgressError, Reserved, read_capped};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback server: `/file` answers bytes, `/to?url=…` redirects there, `/loop` redirects to
/// itself. Counts the requests it saw.
async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route("/file", get(|| async { "0123456789" }))
        .route(
            "/to",
            get(
                |axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
                    let target = query.unwrap_or_default().trim_start_matches("url=").to_owned();
                    (StatusCode::FOUND, [(header::LOCATION, target)])
                },
            ),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(request).await
                }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, hits)
}

fn client(allow: &[&str]) -> EgressClient {
    let config = EgressConfig {
        allow_networks: allow.iter().map(|entry| (*entry).to_owned()).collect(),
        ..EgressConfig::default()
    };
    EgressClient::new(&config, "switchboard-test").unwrap()
}

async fn fetch(client: &EgressClient, url: &str) -> Result<Vec<u8>, EgressError> {
    let mut response = client.get(url, HeaderMap::new(), TIMEOUT).await?;
    read_capped(&mut response, 1024).await
}

#[tokio::test]
async fn internal_addresses_are_refused_before_any_request_leaves() {
    let (address, hits) = server().await;
    let port = address.port();
    let guarded = client(&[]);
    for url in [
        format!("http://127.0.0.1:{port}/file"),
        format!("http://[::1]:{port}/file"),
        format!("http://[::ffff:127.0.0.1]:{port}/file"),
        format!("http://0.0.0.0:{port}/file"),
        // The URL parser normalizes other spellings of 127.0.0.1.
        format!("http://2130706433:{port}/file"),
        format!("http://0x7f.1:{port}/file"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        let error = fetch(&guarded, &url).await.expect_err(&url);
        assert!(
            matches!(error, EgressError::Refused { .. }) && error.is_refusal(),
            "{url}: {error:?}"
        );
    }
    // A name is checked on every address it resolves to.
    let error = fetch(&guarded, &format!("http://localhost:{port}/file"))
        .await
        .expect_err("localhost is loopback");
    assert!(
        matches!(
            error,
            EgressError::Refused {
                reason: Reserved::Loopback,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("egress.allow_networks"),
        "the message says how to allow it: {error}"
    );
    for url in ["file:///etc/passwd", "gopher://127.0.0.1/", "not a url"] {
        assert!(fetch(&guarded, url).await.expect_err(url).is_refusal(), "{url}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no request reached the server");
}

#[tokio::test]
async fn allow_listed_networks_are_fetched_and_every_redirect_is_checked_again() {
    let (address, hits) = server().await;
    let port = address.port();
    let allowed = client(&["127.0.0.1/32"]);
    assert_eq!(
        fetch(&allowed, &format!("http://127.0.0.1:{port}/file"))
            .await
            .unwrap(),
        b"0123456789"
    );
    assert_eq!(
        fetch(
            &allowed,
            &format!("http://127.0.0.1:{port}/to?url=http://127.0.0.1:{port}/file")
        )
        .await
        .unwrap(),
        b"0123456789"
    );
    // An allowed host redirecting to an address outside the allow list is refused at the hop.
    for target in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://127.0.0.2:{port}/file"),
        format!("http://[::1]:{port}/file"),
    ] {
        let error = fetch(&allowed, &format!("http://127.0.0.1:{port}/to?url={target}"))
            .await
            .expect_err(&target);
        assert!(
            matches!(error, EgressError::Refused { .. }),
            "{target}: {error:?}"
        );
    }
    let before = hits.load(Ordering::SeqCst);
    let error = fetch(&allowed, &format!("http://127.0.0.1:{port}/loop"))
        .await
        .expect_err("redirect loop");
    assert_eq!(error, EgressError::TooManyRedirects(3));
    assert_eq!(
        hits.load(Ordering::SeqCst) - before,
        4,
        "the first request and three redirects"
    );
    // Bodies over the cap are refused while reading.
    let mut response = allowed
        .get(
            &format!("http://127.0.0.1:{port}/file"),
            HeaderMap::new(),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(read_capped(&mut response, 4).await, Err(EgressError::TooLarge(4)));
}
