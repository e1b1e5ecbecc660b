//! The shared client still verifies servers: over a local TLS server (no
//! network), a certificate that chains to no trusted root is refused, and the
//! same server is reached once its certificate is trusted.

use super::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// Self-signed for `localhost` (test only): `openssl req -x509 -newkey ec
/// -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 -subj /CN=localhost
/// -addext subjectAltName=DNS:localhost`.
const LOCALHOST_CERT: &[u8] = include_bytes!("localhost.pem");
const LOCALHOST_KEY: &[u8] = include_bytes!("localhost.key");

#[test]
fn the_compiled_in_roots_are_mozillas_and_every_one_is_a_usable_anchor() {
    let pem = compiled_in_pem();
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().expect("valid PEM");
    assert_eq!(ders.as_slice(), webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    let mut store = rustls::RootCertStore::empty();
    let (valid, invalid) = store.add_parsable_certificates(ders);
    assert!(valid > 100, "{valid} roots");
    assert_eq!(invalid, 0);
    // AWS endpoints chain to Amazon Trust Services, part of Mozilla's program.
    let amazon = b"Amazon Root CA 1";
    assert!(store
        .roots
        .iter()
        .any(|a| a.subject.as_ref().windows(amazon.len()).any(|w| w == amazon)));
}

#[test]
fn the_environment_chooses_the_platform_store_only_when_it_names_one() {
    // Read, not set: tests run in parallel and share the environment.
    let named = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    assert_eq!(Roots::from_env() == Roots::Platform, named);
}

/// Serves one connection with the localhost certificate; answers an empty
/// bucket list to the request, if the handshake gets that far.
fn local_tls_server() -> u16 {
    let certs = vec![CertificateDer::from_pem_slice(LOCALHOST_CERT).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(LOCALHOST_KEY).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else { return };
        let Ok(conn) = rustls::ServerConnection::new(Arc::new(config)) else {
            return;
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Buckets></Buckets></ListAllMyBucketsResult>"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tls.write_all(response.as_bytes());
        let _ = tls.flush();
        tls.conn.send_close_notify();
        let _ = tls.flush();
    });
    port
}

fn s3_over(http: SharedHttpClient, port: u16) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = format!("{e:?}");
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(" / {s:?}"));
        source = s.source();
    }
    text
}

#[tokio::test]
async fn a_certificate_that_chains_to_no_compiled_in_root_is_refused() {
    let port = local_tls_server();
    let err = s3_over(http_client(Roots::CompiledIn), port)
        .list_buckets()
        .send()
        .await
        .expect_err("an untrusted server must not be reached");
    let text = chain(&err);
    assert!(text.contains("UnknownIssuer"), "{text}");
}

#[tokio::test]
async fn the_same_server_is_reached_once_its_certificate_is_trusted() {
    let port = local_tls_server();
    let store = TrustStore::empty().with_native_roots(false).with_pem_certificate(LOCALHOST_CERT);
    let listed = s3_over(http_client_trusting(store), port).list_buckets().send().await;
    assert!(listed.is_ok(), "{}", listed.err().map(|e| chain(&e)).unwrap_or_default());
}
