//! The one HTTPS client all SDK clients share, and the roots it trusts.
//!
//! By default the SDK gives every service client its own HTTPS client, and
//! each builds its TLS configuration on its first call from the platform's
//! CA store: every certificate file the OS has is read and parsed, once per
//! client (BENCHMARKS.md measures the cold-start cost). Here one client is
//! shared and, unless the environment names a CA store, it trusts Mozilla's
//! root program compiled into the binary (`webpki-root-certs`, from the
//! rustls project). Server certificates are verified against those roots as
//! before; only where the roots come from changes.

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use base64::Engine;

/// Where the trusted roots come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// Mozilla's roots, compiled in: nothing to read at a cold start.
    CompiledIn,
    /// The platform store, as `SSL_CERT_FILE` / `SSL_CERT_DIR` name it (say
    /// to trust a private CA of a TLS-inspecting proxy).
    Platform,
}

impl Roots {
    /// `Platform` when `SSL_CERT_FILE` or `SSL_CERT_DIR` is set, else `CompiledIn`.
    pub fn from_env() -> Roots {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            Roots::Platform
        } else {
            Roots::CompiledIn
        }
    }

    pub fn trust_store(self) -> TrustStore {
        match self {
            Roots::Platform => TrustStore::default(),
            Roots::CompiledIn => TrustStore::empty().with_native_roots(false).with_pem_certificate(compiled_in_pem()),
        }
    }
}

/// The HTTPS client of every SDK client (rustls with aws-lc, as the SDK's default).
pub fn http_client(roots: Roots) -> SharedHttpClient {
    http_client_trusting(roots.trust_store())
}

fn http_client_trusting(store: TrustStore) -> SharedHttpClient {
    let context = TlsContext::builder().with_trust_store(store).build();
    // Building a context from a trust store cannot fail today; were it to,
    // the SDK's default context (platform roots) still verifies.
    let context = context.unwrap_or_default();
    Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// The compiled-in roots as one PEM bundle, the form the SDK's trust store takes.
pub fn compiled_in_pem() -> Vec<u8> {
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_100);
    let mut b64 = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        b64.clear();
        base64::engine::general_purpose::STANDARD.encode_string(cert.as_ref(), &mut b64);
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            // Base64 is ASCII, so every 64-byte chunk is a whole str.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests;
