//! The HTTP client of webhook deliveries (SPEC §7, §9): [`resolve_target`] parses a webhook URL (`http://`
//! or `https://`), resolves its host and applies the SSRF rules of [`super::notify::refused_reason`];
//! [`send_once`] makes one `POST` to the checked address (over TLS for `https://`, the certificate checked
//! against [`TlsRoots`] for the URL's host name) with a timeout and reads a bounded part of the answer.

use super::notify::{refused_reason, AllowList, Prepared};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::{self, pki_types};

/// Most bytes of a receiver's answer read (the rest is dropped).
const MAX_ANSWER: usize = 64 * 1024;

/// The certificate authorities `https://` webhook targets are checked against: Mozilla's roots (embedded),
/// plus those of `--alerts-webhook-ca-file`.
#[derive(Clone)]
pub struct TlsRoots {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsRoots")
    }
}

impl Default for TlsRoots {
    fn default() -> TlsRoots {
        TlsRoots::new(&[]).expect("Mozilla's roots make a TLS client configuration")
    }
}

impl TlsRoots {
    /// Mozilla's roots and `extra` (DER certificates).
    pub fn new(extra: &[pki_types::CertificateDer<'static>]) -> Result<TlsRoots, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra {
            roots
                .add(cert.clone())
                .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsRoots {
            config: Arc::new(config),
        })
    }

    /// Mozilla's roots and every certificate of a PEM file (`--alerts-webhook-ca-file`).
    pub fn with_pem_file(path: &Path) -> Result<TlsRoots, String> {
        use pki_types::pem::PemObject;
        let certs: Vec<_> = pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        TlsRoots::new(&certs)
    }
}

/// A checked target: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header.
    pub authority: String,
    pub path_and_query: String,
    /// `https://`: the name the server's certificate must be valid for.
    pub tls_name: Option<String>,
}

/// Parses the URL, resolves its host and checks every resolved address against the SSRF rules.
pub async fn resolve_target(url: &str, allow: &AllowList) -> Result<Target, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("the URL must start with http:// or https://".into()),
    };
    let authority = uri.authority().ok_or("the URL has no host")?;
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{host} has no address"))?;
    if !allow.allows_host(host) {
        for a in &addrs {
            if let Some(why) = refused_reason(a.ip()).filter(|_| !allow.allows_ip(a.ip())) {
                return Err(format!(
                    "refused: {host} resolves to {} ({why}); allow it with --alerts-webhook-allow",
                    a.ip()
                ));
            }
        }
    }
    Ok(Target {
        addr: first,
        authority: authority.as_str().to_string(),
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        tls_name: tls.then(|| host.to_string()),
    })
}

/// What one attempt got: a status, or an error and whether it may be retried.
pub enum AttemptResult {
    Status(u16),
    Failed { error: String, retry: bool },
}

/// One `POST` of `req` to `target` within `timeout` (connection, TLS handshake, request and answer).
pub async fn send_once(
    target: &Target,
    req: &Prepared,
    timeout: Duration,
    roots: &TlsRoots,
) -> AttemptResult {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
        match &target.tls_name {
            None => exchange(stream, target, req).await,
            Some(name) => {
                let server_name = pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("{name:?} is not a TLS server name: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(roots.config.clone())
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| format!("TLS handshake with {name} failed: {e}"))?;
                exchange(tls, target, req).await
            }
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(status)) => AttemptResult::Status(status),
        Ok(Err(error)) => AttemptResult::Failed { error, retry: true },
        Err(_) => AttemptResult::Failed {
            error: format!("timed out after {} ms", timeout.as_millis()),
            retry: true,
        },
    }
}

/// The HTTP/1.1 exchange over a connected stream: the status of the answer.
async fn exchange<S>(stream: S, target: &Target, req: &Prepared) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let conn = tokio::spawn(conn);
    let mut builder = hyper::Request::post(target.path_and_query.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, req.content_type)
        .header(hyper::header::USER_AGENT, "Sightline-Webhooks/1.0");
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| format!("invalid request (check custom_headers): {e}"))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = answer.status().as_u16();
    // Read (a bounded part of) the answer so the receiver is not cut off mid-write.
    let mut body = answer.into_body();
    let mut read = 0usize;
    while read < MAX_ANSWER {
        match body.frame().await {
            Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
    conn.abort();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/tls");

    /// A TLS server on 127.0.0.1 with the test certificate, answering 200 to one request; returns its port
    /// and the request it read.
    async fn tls_server() -> (u16, tokio::task::JoinHandle<String>) {
        use pki_types::pem::PemObject;
        let certs = pki_types::CertificateDer::pem_file_iter(format!("{DIR}/server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = pki_types::PrivateKeyDer::from_pem_file(format!("{DIR}/server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return String::new();
            };
            let mut got = Vec::new();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tls.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            let _ = tls.shutdown().await;
            String::from_utf8_lossy(&got).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn https_targets_are_checked_against_the_roots() {
        let allow = AllowList::parse(&["127.0.0.1"]).unwrap();
        let req = Prepared {
            body: r#"{"a":1}"#.into(),
            content_type: "application/json",
            headers: vec![],
        };
        let trusted = TlsRoots::with_pem_file(Path::new(&format!("{DIR}/ca.pem"))).unwrap();
        let (port, server) = tls_server().await;
        let url = format!("https://127.0.0.1:{port}/hook");
        let target = resolve_target(&url, &allow).await.unwrap();
        match send_once(&target, &req, Duration::from_secs(5), &trusted).await {
            AttemptResult::Status(s) => assert_eq!(s, 200),
            AttemptResult::Failed { error, .. } => panic!("{error}"),
        }
        let got = server.await.unwrap();
        assert!(got.starts_with("POST /hook HTTP/1.1\r\n"), "{got}");
        assert!(got.ends_with(r#"{"a":1}"#), "{got}");

        // Mozilla's roots alone do not know the test CA.
        let (port, _server) = tls_server().await;
        let url = format!("https://127.0.0.1:{port}/hook");
        let target = resolve_target(&url, &allow).await.unwrap();
        match send_once(&target, &req, Duration::from_secs(5), &TlsRoots::default()).await {
            AttemptResult::Failed { error, retry } => {
                assert!(
                    error.contains("TLS handshake with 127.0.0.1 failed"),
                    "{error}"
                );
                assert!(error.contains("UnknownIssuer"), "{error}");
                assert!(retry);
            }
            AttemptResult::Status(s) => panic!("an unknown issuer must fail, got HTTP {s}"),
        }

        let missing =
            TlsRoots::with_pem_file(Path::new(&format!("{DIR}/missing.pem"))).unwrap_err();
        assert!(missing.starts_with("cannot read"), "{missing}");
        let no_cert = TlsRoots::with_pem_file(Path::new(&format!("{DIR}/server.key"))).unwrap_err();
        assert!(no_cert.ends_with("holds no PEM certificate"), "{no_cert}");
    }
}
