//! Rate limits: every client has a budget of requests that refills over time (a token
//! bucket, governor's GCRA), and a request beyond it gets 429 with `Retry-After`.
//!
//! Who counts as one client, by what the request shows:
//! - a valid token on a Flux endpoint: that token *and* the client address, because a whole
//!   fleet shares the read token and one cluster must not use up the others' budget;
//! - a valid token anywhere else: that token (by its name, never the secret);
//! - no valid token (missing, wrong, sent twice), and the OpenAPI documents: the client
//!   address, so a flood of failed attempts is slowed without a lock-out of valid tokens
//!   from the same address (see docs/configuration.md, "Rate limits").
//!
//! The probes are never limited: the kubelet must always reach them. The client address is
//! the access log's ([`access::client_address`]: forwarding headers only from trusted
//! proxies); an IPv6 client counts by its /64, which one host usually controls whole.
//!
//! Memory is bounded: each budget tracks at most `max_clients` clients; further ones share
//! one budget until clients whose budget is full again are forgotten (every
//! [`SWEEP_EVERY`]), which forgets nothing a fresh entry would not know.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::access;
use super::auth::Credentials;
use super::error::ApiError;
use crate::settings::{RateLimitSettings, RateQuota, TrustedProxies};

/// The probes: never limited, as a kubelet that cannot reach them restarts the pod.
pub const UNLIMITED_PATHS: [&str; 2] = ["/health", "/ready"];

/// The headers on every limited response (IETF draft `RateLimit` fields): name and meaning,
/// also for the OpenAPI document and CORS.
pub const HEADERS: [(&str, &str); 3] = [
    (
        "RateLimit-Limit",
        "Requests this client may make at once, its full budget (on every response but the \
         probes', when rate limits are on)",
    ),
    (
        "RateLimit-Remaining",
        "Requests left in the budget after this one",
    ),
    ("RateLimit-Reset", "Seconds until the budget is full again"),
];

/// How often clients whose budget is full again are forgotten.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Whose budget a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A valid credential, by its name (`env:AUTH_TOKEN`, or a named credential's).
    Token(std::sync::Arc<str>),
    /// A valid credential from one client address.
    TokenAt(std::sync::Arc<str>, IpAddr),
    /// No valid token: the client address.
    Address(IpAddr),
    /// Every client beyond `max_clients`, together.
    Overflow,
}

/// The three budgets (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Flux,
    Api,
    Anonymous,
}

impl Class {
    /// Whose budget ran out, for the problem's detail.
    fn whose(self) -> &'static str {
        match self {
            Self::Flux => "for this token from this address",
            Self::Api => "for this token",
            Self::Anonymous => "from this address without a valid token",
        }
    }
}

/// The address a client counts as: an IPv6 address by its /64.
pub fn client_address(address: Option<IpAddr>) -> IpAddr {
    match address {
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        Some(v4) => v4,
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Which budget a request counts against, and as whom; `None` for the probes. Authenticates
/// as `auth::authorize` does, so a wrong token is never a client of its own.
pub fn client_of(
    credentials: &Credentials,
    trusted_proxies: &TrustedProxies,
    path: &str,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<(Class, Client)> {
    if UNLIMITED_PATHS.contains(&path) {
        return None;
    }
    let address = || client_address(access::client_address(peer, headers, trusted_proxies));
    let principal = match super::PUBLIC_PATHS.contains(&path) {
        true => None,
        false => super::auth::credential(headers)
            .ok()
            .flatten()
            .and_then(|presented| credentials.authenticate(&presented)),
    };
    let flux = path
        .strip_prefix(super::flux::CLUSTERS_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    Some(match principal {
        Some(principal) if flux => (Class::Flux, Client::TokenAt(principal.name, address())),
        Some(principal) => (Class::Api, Client::Token(principal.name)),
        None => (Class::Anonymous, Client::Address(address())),
    })
}

/// What a budget says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    /// `Some` when the request is refused: whole seconds until one more request fits.
    pub retry_after_secs: Option<u64>,
}

impl Verdict {
    /// Sets the [`HEADERS`] on a response.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let values = [
            u64::from(self.limit),
            u64::from(self.remaining),
            self.reset_secs,
        ];
        for ((name, _), value) in HEADERS.iter().zip(values) {
            headers.insert(
                HeaderName::from_static(lowercase(name)),
                HeaderValue::from(value),
            );
        }
    }
}

/// The lowercase form `HeaderName::from_static` needs, of [`HEADERS`]' names.
fn lowercase(name: &str) -> &'static str {
    match name {
        "RateLimit-Limit" => "ratelimit-limit",
        "RateLimit-Remaining" => "ratelimit-remaining",
        "RateLimit-Reset" => "ratelimit-reset",
        other => unreachable!("{other} is not a rate limit header"),
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A governor state store like its `HashMapStateStore`, holding at most `cap` clients:
/// further ones share the `overflow` entry until a sweep makes room. A client already
/// tracked keeps its own budget. Each entry is governor's "theoretical arrival time" in
/// nanoseconds since the limiter started (0: none yet).
pub struct CappedStore<K> {
    entries: Mutex<HashMap<K, u64>>,
    cap: usize,
    overflow: K,
}

impl<K: Hash + Eq + Clone> CappedStore<K> {
    fn new(cap: usize, overflow: K) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            cap,
            overflow,
        }
    }

    /// A panic elsewhere while holding the lock leaves the map whole (each update is one
    /// store of a number), so the data is still good.
    fn lock(&self) -> MutexGuard<'_, HashMap<K, u64>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Hash + Eq + Clone> StateStore for CappedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut entries = self.lock();
        let key = if entries.len() >= self.cap && !entries.contains_key(key) {
            &self.overflow
        } else {
            key
        };
        let entry = entries.entry(key.clone()).or_insert(0);
        let (outcome, next) = f(NonZeroU64::new(*entry).map(|n| Nanos::from(n.get())))?;
        *entry = next.into();
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for CappedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        self.lock().retain(|_, at| *at > drop_below);
    }

    /// Gives memory back once a flood of clients is forgotten; not for small changes, as
    /// shrinking copies the table.
    fn shrink_to_fit(&self) {
        let mut entries = self.lock();
        if entries.capacity() > 4 * entries.len().max(1024) {
            entries.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

type Limiter<C> = RateLimiter<Client, CappedStore<Client>, C, StateInformationMiddleware>;

/// One budget: its quota and its clients.
struct Budget<C: Clock> {
    limiter: Limiter<C>,
    quota: Quota,
}

impl<C: Clock> Budget<C> {
    fn new(quota: RateQuota, max_clients: usize, clock: C) -> Self {
        let per_minute = NonZeroU32::new(quota.per_minute).expect("settings checked it");
        let burst = NonZeroU32::new(quota.burst).expect("settings checked it");
        let quota = Quota::with_period(Duration::from_secs(60) / per_minute.get())
            .expect("a positive period")
            .allow_burst(burst);
        Self {
            limiter: Limiter::new(
                quota,
                CappedStore::new(max_clients, Client::Overflow),
                clock,
            ),
            quota,
        }
    }

    fn check(&self, client: &Client) -> Verdict {
        let limit = self.quota.burst_size().get();
        let per_request = self.quota.replenish_interval();
        match self.limiter.check_key(client) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Verdict {
                    limit,
                    remaining,
                    reset_secs: ceil_secs(per_request * (limit - remaining)),
                    retry_after_secs: None,
                }
            }
            Err(refused) => {
                let wait = refused.wait_time_from(self.limiter.clock().now());
                Verdict {
                    limit,
                    remaining: 0,
                    reset_secs: ceil_secs(wait + per_request * (limit - 1)),
                    retry_after_secs: Some(ceil_secs(wait).max(1)),
                }
            }
        }
    }
}

/// The budgets of one server.
pub struct RateLimits<C: Clock = DefaultClock> {
    flux: Budget<C>,
    api: Budget<C>,
    anonymous: Budget<C>,
    clock: C,
    started: C::Instant,
    /// When the next sweep is due, in nanoseconds since `started`.
    next_sweep: AtomicU64,
}

impl RateLimits {
    /// The budgets `settings` describe, or `None` when rate limiting is off.
    pub fn from_settings(settings: &RateLimitSettings) -> Option<Self> {
        settings
            .enabled
            .then(|| Self::with_clock(settings, DefaultClock::default()))
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    pub fn with_clock(settings: &RateLimitSettings, clock: C) -> Self {
        let budget = |quota| Budget::new(quota, settings.max_clients, clock.clone());
        Self {
            flux: budget(settings.flux),
            api: budget(settings.api),
            anonymous: budget(settings.anonymous),
            started: clock.now(),
            clock,
            next_sweep: AtomicU64::new(SWEEP_EVERY.as_nanos() as u64),
        }
    }

    /// Counts one request of `client` against the `class` budget.
    pub fn check(&self, class: Class, client: &Client) -> Verdict {
        self.sweep_when_due();
        self.budget(class).check(client)
    }

    fn budget(&self, class: Class) -> &Budget<C> {
        match class {
            Class::Flux => &self.flux,
            Class::Api => &self.api,
            Class::Anonymous => &self.anonymous,
        }
    }

    /// How many clients the `class` budget tracks.
    pub fn clients(&self, class: Class) -> usize {
        self.budget(class).limiter.len()
    }

    /// Forgets clients whose budget is full again; the first request after a sweep is due
    /// does it (a sweep of the largest table takes about a millisecond).
    fn sweep_when_due(&self) {
        let now = u64::from(self.clock.now().duration_since(self.started));
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due
            || self
                .next_sweep
                .compare_exchange(
                    due,
                    now + SWEEP_EVERY.as_nanos() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        for budget in [&self.flux, &self.api, &self.anonymous] {
            budget.limiter.retain_recent();
            budget.limiter.shrink_to_fit();
        }
    }
}

/// Middleware: counts the request against its budget; beyond it, answers 429 without
/// calling the service. Either way the response carries the budget's [`HEADERS`].
pub async fn limit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = super::state_of(&request);
    let counted = state.rate_limits.as_ref().and_then(|limits| {
        let (class, client) = client_of(
            &state.credentials,
            &state.trusted_proxies,
            request.path(),
            request.headers(),
            request.peer_addr().map(|a| a.ip()),
        )?;
        Some((class, limits.check(class, &client)))
    });
    let Some((class, verdict)) = counted else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    let mut response: ServiceResponse<EitherBody<_>> = match verdict.retry_after_secs {
        None => next.call(request).await?.map_into_left_body(),
        Some(retry_after_secs) => request
            .error_response(ApiError::RateLimited {
                client: class.whose(),
                retry_after_secs,
            })
            .map_into_right_body(),
    };
    verdict.write_headers(response.headers_mut());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Map;

    use actix_web::http::header::{self, HeaderValue};
    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::settings::Settings;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let env: Map<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(None, &env).unwrap()
    }

    fn limits(pairs: &[(&str, &str)]) -> (RateLimits<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            RateLimits::with_clock(&settings(pairs).rate_limit, clock.clone()),
            clock,
        )
    }

    fn at(address: &str) -> Client {
        Client::Address(address.parse().unwrap())
    }

    /// 10,000 clusters polling three endpoints every minute, all through one address (the
    /// worst case: an ingress not listed in trusted_proxies, or one NAT for the fleet).
    #[test]
    fn the_defaults_let_a_whole_fleet_poll_through_one_address() {
        let (limits, clock) = limits(&[]);
        let fleet = Client::TokenAt("env:AUTH_TOKEN".into(), "10.0.0.1".parse().unwrap());
        // Every cluster restarts at once and asks for all three endpoints.
        for request in 0..30_000 {
            let verdict = limits.check(Class::Flux, &fleet);
            assert_eq!(verdict.retry_after_secs, None, "restart request {request}");
        }
        // Then ten minutes of polling: 500 requests a second.
        for second in 0..600 {
            clock.advance(Duration::from_secs(1));
            for _ in 0..500 {
                let verdict = limits.check(Class::Flux, &fleet);
                assert_eq!(verdict.retry_after_secs, None, "second {second}");
            }
        }
        // A second restart right away still passes.
        for _ in 0..30_000 {
            assert_eq!(limits.check(Class::Flux, &fleet).retry_after_secs, None);
        }
    }

    #[test]
    fn the_defaults_stop_a_runaway_client() {
        let (limits, clock) = limits(&[]);
        let runaway = Client::TokenAt("env:AUTH_TOKEN".into(), "10.0.0.2".parse().unwrap());
        let mut refused = 0;
        for _ in 0..120 {
            clock.advance(Duration::from_millis(500));
            for _ in 0..2_000 {
                if limits
                    .check(Class::Flux, &runaway)
                    .retry_after_secs
                    .is_some()
                {
                    refused += 1;
                }
            }
        }
        // 4,000 a second for a minute: only the burst and the refill (1,000 a second) pass.
        let passed = 240_000 - refused;
        assert!((119_000..=121_000).contains(&passed), "{passed} passed");
    }

    #[test]
    fn the_headers_count_down_and_say_when_to_come_back() {
        let (limits, clock) = limits(&[
            ("FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE", "60"),
            ("FLUX_CATALOG_RATE_LIMIT__API_BURST", "3"),
        ]);
        let token = Client::Token("env:CRUD_AUTH_TOKEN".into());
        let seen: Vec<Verdict> = (0..4).map(|_| limits.check(Class::Api, &token)).collect();
        let remaining: Vec<u32> = seen.iter().map(|v| v.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert!(seen.iter().all(|v| v.limit == 3));
        assert_eq!(
            seen[2].reset_secs, 3,
            "one request a second refills three in 3 s"
        );
        assert_eq!(seen[3].retry_after_secs, Some(1));
        assert_eq!(seen[3].reset_secs, 3);
        clock.advance(Duration::from_secs(1));
        let again = limits.check(Class::Api, &token);
        assert_eq!((again.retry_after_secs, again.remaining), (None, 0));
        clock.advance(Duration::from_secs(3));
        assert_eq!(limits.check(Class::Api, &token).remaining, 2);
    }

    #[test]
    fn wrong_tokens_are_one_client_per_address_and_never_an_entry_of_their_own() {
        let s = settings(&[
            ("API_MODE", "crud"),
            ("AUTH_TOKEN", "read"),
            ("CRUD_AUTH_TOKEN", "write"),
        ]);
        let credentials = Credentials::from_settings(&s);
        let limits = RateLimits::with_clock(&s.rate_limit, FakeRelativeClock::default());
        let peer = Some("203.0.113.9".parse().unwrap());
        let none = TrustedProxies::default();
        for attempt in 0..1_000 {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer guess-{attempt}")).unwrap(),
            );
            let (class, client) =
                client_of(&credentials, &none, "/clusters", &headers, peer).unwrap();
            assert_eq!(
                (class, client.clone()),
                (Class::Anonymous, at("203.0.113.9"))
            );
            limits.check(class, &client);
        }
        assert_eq!(limits.clients(Class::Anonymous), 1);

        let with = |token: &str, path: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
            client_of(&credentials, &none, path, &headers, peer)
        };
        let flux = "/api/v2/flux/clusters/a.example.com/platform-components";
        assert_eq!(
            with("read", flux),
            Some((
                Class::Flux,
                Client::TokenAt("env:AUTH_TOKEN".into(), "203.0.113.9".parse().unwrap())
            ))
        );
        assert_eq!(
            with("read", "/api/v2/flux/clusters").map(|c| c.0),
            Some(Class::Flux)
        );
        assert_eq!(
            with("write", "/clusters"),
            Some((Class::Api, Client::Token("env:CRUD_AUTH_TOKEN".into())))
        );
        assert_eq!(
            with("read", "/api/v2/flux/clustersx").map(|c| c.0),
            Some(Class::Api)
        );
        assert_eq!(
            with("read", "/openapi.json").map(|c| c.0),
            Some(Class::Anonymous),
            "the documents count per address, token or not"
        );
        for probe in UNLIMITED_PATHS {
            assert_eq!(with("wrong", probe), None, "{probe}");
            assert!(super::super::PUBLIC_PATHS.contains(&probe), "{probe}");
        }
    }

    #[test]
    fn the_client_table_is_bounded_and_tracked_clients_keep_their_budget() {
        let (limits, clock) = limits(&[
            ("FLUX_CATALOG_RATE_LIMIT__MAX_CLIENTS", "100"),
            ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE", "60"),
            ("FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST", "2"),
        ]);
        let early = at("198.51.100.1");
        limits.check(Class::Anonymous, &early);
        // A client rotating through many addresses.
        for n in 0..10_000u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            limits.check(Class::Anonymous, &Client::Address(address));
        }
        assert!(limits.clients(Class::Anonymous) <= 101);
        // The client tracked before the flood still has its own budget: one left.
        assert_eq!(
            limits.check(Class::Anonymous, &early).retry_after_secs,
            None
        );
        assert!(
            limits
                .check(Class::Anonymous, &early)
                .retry_after_secs
                .is_some()
        );
        // A newcomer shares the overflow budget, which the flood used up.
        assert!(
            limits
                .check(Class::Anonymous, &at("198.51.100.2"))
                .retry_after_secs
                .is_some()
        );
        // Once their budgets are full again, the sweep forgets them all.
        clock.advance(SWEEP_EVERY);
        limits.check(Class::Anonymous, &at("198.51.100.3"));
        assert_eq!(limits.clients(Class::Anonymous), 1);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let a = client_address(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = client_address(Some("2001:db8:1:2:ffff::9".parse().unwrap()));
        let c = client_address(Some("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
        let v4 = client_address(Some("192.0.2.7".parse().unwrap()));
        assert_eq!(v4.to_string(), "192.0.2.7");
    }
}
