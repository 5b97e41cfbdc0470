//! The HTTP client of webhook deliveries (SPEC §7, §9): [`resolve_target`] parses a webhook URL, resolves
//! its host and applies the SSRF rules of [`super::notify::refused_reason`]; [`send_once`] makes one `POST`
//! to the checked address with a timeout and reads a bounded part of the answer.

use super::notify::{refused_reason, AllowList, Prepared};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Most bytes of a receiver's answer read (the rest is dropped).
const MAX_ANSWER: usize = 64 * 1024;

/// A checked target: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` header.
    pub authority: String,
    pub path_and_query: String,
}

/// Parses the URL, resolves its host and checks every resolved address against the SSRF rules.
pub async fn resolve_target(url: &str, allow: &AllowList) -> Result<Target, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err("https targets are not supported yet".into()),
        _ => return Err("the URL must start with http://".into()),
    }
    let authority = uri.authority().ok_or("the URL has no host")?;
    let host = authority.host().trim_matches(['[', ']']);
    let port = authority.port_u16().unwrap_or(80);
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
    })
}

/// What one attempt got: a status, or an error and whether it may be retried.
pub enum AttemptResult {
    Status(u16),
    Failed { error: String, retry: bool },
}

pub async fn send_once(target: &Target, req: &Prepared, timeout: Duration) -> AttemptResult {
    let fut = async {
        let stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", target.addr))?;
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
        Ok::<u16, String>(status)
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
