//! The access log: one line per request, whose fields a client cannot forge.
//!
//! A line is `client "METHOD target VERSION" status size duration "user agent" rid=id`.
//! The client is the connection's peer; forwarding headers are believed only from a
//! configured trusted proxy. Every field a client wrote is escaped (quotes, backslashes,
//! control characters and every byte outside printable ASCII), so one request is always
//! exactly one line with these fields. Query values and URL userinfo, where clients
//! sometimes put credentials, are never written.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, Uri, Version};
use actix_web::middleware::Next;
use actix_web::web;

use super::{AppState, REQUEST_ID_HEADER};
use crate::settings::TrustedProxies;

/// The log target of the access log.
pub const ACCESS_LOG: &str = "flux_catalog::access";

/// `bytes` as printable ASCII: `"` and `\` escaped with a backslash, every other byte
/// outside `0x20..=0x7e` (control characters, and each byte of non-ASCII text) as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out
}

/// The request target as logged: scheme and host (never userinfo) of an absolute-form
/// target, the path, and the query's parameter names with every value `<redacted>`.
pub fn logged_target(uri: &Uri) -> String {
    let mut target = String::new();
    if let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) {
        target.push_str(scheme);
        target.push_str("://");
        target.push_str(authority.host());
        if let Some(port) = authority.port_u16() {
            let _ = write!(target, ":{port}");
        }
    }
    target.push_str(uri.path());
    if let Some(query) = uri.query() {
        target.push('?');
        let parameters: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=<redacted>"),
                // A bare parameter may itself be the secret.
                None if pair.is_empty() => String::new(),
                None => "<redacted>".to_owned(),
            })
            .collect();
        target.push_str(&parameters.join("&"));
    }
    escape(target.as_bytes())
}

/// One address of a forwarding header: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, or any of these quoted (`Forwarded`). `None` for anything else
/// (`unknown`, obfuscated identifiers, garbage).
fn hop_address(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let address = if let Some(rest) = hop.strip_prefix('[') {
        rest.split(']').next()?.parse().ok()?
    } else if let Ok(address) = hop.parse::<IpAddr>() {
        address
    } else {
        let (host, port) = hop.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok()?.into()
    };
    Some(IpAddr::to_canonical(&address))
}

/// The addresses a chain of proxies recorded, nearest the client first: `X-Forwarded-For`
/// when there is one (the header nearly every proxy appends to), else the `for=` of
/// `Forwarded` (RFC 7239). Every instance of the header counts, in order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<String> {
    let values = |name| {
        headers
            .get_all(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
    };
    let forwarded_for = values(header::X_FORWARDED_FOR);
    if !forwarded_for.is_empty() {
        return forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::to_owned)
            .collect();
    }
    values(header::FORWARDED)
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.to_owned())
            })
        })
        .collect()
}

/// Who sent the request: the peer, unless the peer is a trusted proxy; then, walking the
/// forwarding header from the right (each proxy appends whom it saw), the first address
/// that is not a trusted proxy. An entry that is not an address ends the walk at the last
/// address known, since nothing to its left can be believed. Always an IP address, never
/// text from the request.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !trusted.contains(client) {
        return Some(client);
    }
    for hop in forwarded_hops(headers).iter().rev() {
        match hop_address(hop) {
            Some(address) => {
                client = address;
                if !trusted.contains(address) {
                    break;
                }
            }
            None => break,
        }
    }
    Some(client)
}

/// The part of a line known before the request is served, every field escaped.
pub struct RequestLine {
    client: String,
    method: String,
    target: String,
    version: String,
    agent: String,
}

impl RequestLine {
    pub fn new(
        client: Option<IpAddr>,
        method: &Method,
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
    ) -> Self {
        Self {
            client: client.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            method: escape(method.as_str().as_bytes()),
            target: logged_target(uri),
            version: format!("{version:?}"),
            agent: headers
                .get(header::USER_AGENT)
                .map_or_else(|| "-".to_owned(), |v| escape(v.as_bytes())),
        }
    }
}

impl std::fmt::Display for RequestLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} \"{} {} {}\"",
            self.client, self.method, self.target, self.version
        )
    }
}

/// Writes the line of a request answered with `status`; the fields also go as the
/// record's key-values, which the JSON log format writes as keys of their own.
pub fn write(line: &RequestLine, status: u16, size: Option<u64>, started: Instant, id: &str) {
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let shown_size = size.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let id = escape(id.as_bytes());
    log::info!(
        target: ACCESS_LOG,
        client = line.client.as_str(),
        method = line.method.as_str(),
        path = line.target.as_str(),
        version = line.version.as_str(),
        status = status,
        size = size,
        duration_ms = elapsed,
        user_agent = line.agent.as_str(),
        request_id = id.as_str();
        "{line} {status} {shown_size} {elapsed:.3}ms \"{}\" rid={id}",
        line.agent
    );
}

/// Middleware writing one line per request, and costing nothing when that log target is
/// off.
pub async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !log::log_enabled!(target: ACCESS_LOG, log::Level::Info) {
        return next.call(request).await;
    }
    let started = Instant::now();
    let none = TrustedProxies::default();
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map_or(&none, |state| &state.trusted_proxies);
    let client = client_address(
        request.peer_addr().map(|a| a.ip()),
        request.headers(),
        trusted,
    );
    let line = RequestLine::new(
        client,
        request.method(),
        request.uri(),
        request.version(),
        request.headers(),
    );
    let response = next.call(request).await;
    match &response {
        Ok(response) => {
            let size = match response.response().body().size() {
                actix_web::body::BodySize::Sized(n) => Some(n),
                _ => None,
            };
            let id = response
                .headers()
                .get(REQUEST_ID_HEADER)
                .map_or("-", |v| v.to_str().unwrap_or("-"));
            write(&line, response.status().as_u16(), size, started, id);
        }
        Err(error) => {
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            log::info!(
                target: ACCESS_LOG,
                "{line} failed: {} {elapsed:.3}ms",
                escape(error.to_string().as_bytes())
            )
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn client(peer: &str, pairs: &[(&str, &str)], proxies: &[&str]) -> String {
        client_address(
            Some(peer.parse().unwrap()),
            &headers(pairs),
            &trusted(proxies),
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn forwarding_headers_count_only_from_a_trusted_peer() {
        let xff = [("x-forwarded-for", "198.51.100.1")];
        assert_eq!(client("203.0.113.5", &xff, &[]), "203.0.113.5");
        assert_eq!(client("203.0.113.5", &xff, &["10.0.0.0/8"]), "203.0.113.5");
        assert_eq!(client("10.0.0.2", &xff, &["10.0.0.0/8"]), "198.51.100.1");
        assert_eq!(
            client("::ffff:10.0.0.2", &xff, &["10.0.0.0/8"]),
            "198.51.100.1",
            "an IPv4-mapped peer is its IPv4 address"
        );
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let proxies = ["10.0.0.0/8"];
        // The client wrote the first two entries itself; the proxies appended the rest.
        let xff = [(
            "x-forwarded-for",
            "1.1.1.1, 198.51.100.9, 203.0.113.7, 10.0.0.3",
        )];
        assert_eq!(client("10.0.0.2", &xff, &proxies), "203.0.113.7");
        // Split over two header lines, in order.
        let split = [
            ("x-forwarded-for", "1.1.1.1, 203.0.113.7"),
            ("x-forwarded-for", "10.0.0.3"),
        ];
        assert_eq!(client("10.0.0.2", &split, &proxies), "203.0.113.7");
        // Only proxies: the left-most is the nearest to the client we know.
        let all = [("x-forwarded-for", "10.0.0.9, 10.0.0.3")];
        assert_eq!(client("10.0.0.2", &all, &proxies), "10.0.0.9");
        // Garbage ends the walk at the last address known.
        let forged = [(
            "x-forwarded-for",
            "evil\" \"GET /x HTTP/1.1\" 200, 10.0.0.3",
        )];
        assert_eq!(client("10.0.0.2", &forged, &proxies), "10.0.0.3");
        assert_eq!(
            client("10.0.0.2", &[("x-forwarded-for", "unknown")], &proxies),
            "10.0.0.2"
        );
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let proxies = ["10.0.0.0/8"];
        let forwarded = [(
            "forwarded",
            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\", for=10.0.0.5:80",
        )];
        assert_eq!(
            client("10.0.0.2", &forwarded, &proxies),
            "2001:db8:cafe::17"
        );
        let both = [
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.4"),
        ];
        assert_eq!(client("10.0.0.2", &both, &proxies), "198.51.100.4");
    }

    #[test]
    fn every_byte_a_client_wrote_is_escaped() {
        assert_eq!(escape(b"curl/8.0"), "curl/8.0");
        assert_eq!(escape(b"a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape(b"a\nb\r\t\x1b[31m"), "a\\x0ab\\x0d\\x09\\x1b[31m");
        assert_eq!(
            escape("zoë\u{202e}".as_bytes()),
            "zo\\xc3\\xab\\xe2\\x80\\xae"
        );
        assert_eq!(escape(b"\xff"), "\\xff");
    }

    #[test]
    fn query_values_and_userinfo_are_never_logged() {
        let target = |s: &str| logged_target(&s.parse::<Uri>().unwrap());
        assert_eq!(target("/clusters"), "/clusters");
        assert_eq!(
            target("/clusters?limit=5&access_token=s3cret"),
            "/clusters?limit=<redacted>&access_token=<redacted>"
        );
        assert_eq!(target("/clusters?s3cret"), "/clusters?<redacted>");
        assert_eq!(
            target("http://flux:s3cret@catalog.example.com:8080/clusters?a=b"),
            "http://catalog.example.com:8080/clusters?a=<redacted>"
        );
    }
}
