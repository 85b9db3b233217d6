//! A real HTTPS server on 127.0.0.1 and clients with right and wrong pins.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use shouhu_tls::{is_pin_mismatch, load_or_create, pinned_client_config, Fingerprint, TlsListener};

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn start(
    dir: &std::path::Path,
) -> Result<(String, Fingerprint, tokio::sync::oneshot::Sender<()>), Box<dyn std::error::Error>> {
    let identity = load_or_create(dir, &[])?;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let listener = TlsListener::new(tcp, identity.config)?;
    let addr = axum::serve::Listener::local_addr(&listener)?;
    let app = Router::new().route("/v1/health", get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((
        format!("https://127.0.0.1:{}", addr.port()),
        identity.fingerprint,
        stop,
    ))
}

fn client(fp: Fingerprint) -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(pinned_client_config(fp)?)
        .timeout(Duration::from_secs(10))
        .build()?)
}

#[tokio::test]
async fn the_pinned_certificate_is_accepted_any_other_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (url, fp, stop) = start(dir.path()).await?;

    let body = client(fp)?
        .get(format!("{url}/v1/health"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(body, "ok");

    // Another county's certificate (or a man in the middle) is refused, and
    // the error says why.
    let other_dir = tempfile::tempdir()?;
    let other = load_or_create(other_dir.path(), &[])?.fingerprint;
    assert_ne!(other, fp);
    let err = match client(other)?.get(format!("{url}/v1/health")).send().await {
        Ok(resp) => return Err(format!("accepted a wrong pin: {}", resp.status()).into()),
        Err(err) => err,
    };
    assert!(is_pin_mismatch(&err), "{err:?}");

    // A plain-HTTP client cannot talk to the TLS port, and the server keeps
    // serving afterwards.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let http_url = url.replace("https://", "http://");
    assert!(plain
        .get(format!("{http_url}/v1/health"))
        .send()
        .await
        .is_err());
    let body = client(fp)?
        .get(format!("{url}/v1/health"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(body, "ok");
    let _ = stop.send(());
    Ok(())
}

#[tokio::test]
async fn a_silent_client_does_not_block_others() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (url, fp, stop) = start(dir.path()).await?;
    let port = url.rsplit(':').next().unwrap_or_default().to_string();
    // Open a TCP connection and say nothing: the handshake waits in its own task.
    let _silent = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await?;
    let body = client(fp)?
        .get(format!("{url}/v1/health"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(body, "ok");
    let _ = stop.send(());
    Ok(())
}
