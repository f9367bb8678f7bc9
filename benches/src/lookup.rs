//! `bench-lookup`: a closed-loop load generator for membership lookups.
//!
//! ```text
//! bench-lookup --protocol http  --addr 127.0.0.1:8080 --keys keys.tsv [--token T]
//! bench-lookup --protocol redis --addr 127.0.0.1:6379 --keys keys.tsv
//!              [--connections 16] [--duration 60] [--warmup 2] [--seed 1]
//! ```
//!
//! `keys.tsv` holds one lookup a line, `segment_id<TAB>customer_id`. Every worker thread owns
//! one blocking, keep-alive TCP connection and sends one request at a time (no pipelining),
//! drawing keys pseudo-randomly (xorshift, fixed seed) from the file:
//!
//! - `http`: `GET /v1/segments/{segment}/members/{customer_id}` (both percent-encoded), a
//!   `200` with a `Content-Length` body `{"member":true|false,...}`; anything else is an error;
//! - `redis`: `SISMEMBER seg:{segment} {customer_id}`, an integer reply `:0` or `:1`; anything
//!   else is an error.
//!
//! The first `--warmup` seconds are not measured; then requests that both start and finish
//! inside the `--duration` window count. Prints one JSON line on stdout:
//! `{"protocol","connections","duration_s","requests","errors","rps","p50_us","p90_us",
//! "p99_us","p999_us","max_us","members_found"}`.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http,
    Redis,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Redis => "redis",
        }
    }
}

struct Args {
    protocol: Protocol,
    addr: String,
    keys: String,
    token: Option<String>,
    connections: usize,
    duration: f64,
    warmup: f64,
    seed: u64,
}

const USAGE: &str = "usage: bench-lookup --protocol http|redis --addr HOST:PORT --keys FILE \
[--token TOKEN] [--connections N] [--duration SECS] [--warmup SECS] [--seed S]";

fn parse() -> Result<Args, String> {
    let mut protocol = None;
    let mut addr = None;
    let mut keys = None;
    let mut args = Args {
        protocol: Protocol::Http,
        addr: String::new(),
        keys: String::new(),
        token: None,
        connections: 16,
        duration: 60.0,
        warmup: 2.0,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--protocol" => {
                protocol = Some(match value()?.as_str() {
                    "http" => Protocol::Http,
                    "redis" => Protocol::Redis,
                    other => {
                        return Err(format!("--protocol: {other:?} is neither http nor redis"));
                    }
                })
            }
            "--addr" => addr = Some(value()?),
            "--keys" => keys = Some(value()?),
            "--token" => args.token = Some(value()?),
            "--connections" => {
                args.connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            "--duration" => {
                args.duration = value()?.parse().map_err(|e| format!("--duration: {e}"))?
            }
            "--warmup" => args.warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    args.protocol = protocol.ok_or_else(|| format!("--protocol is required\n{USAGE}"))?;
    args.addr = addr.ok_or_else(|| format!("--addr is required\n{USAGE}"))?;
    args.keys = keys.ok_or_else(|| format!("--keys is required\n{USAGE}"))?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        return Err("--duration must be a positive number of seconds".into());
    }
    if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
        return Err("--warmup must be zero or a positive number of seconds".into());
    }
    Ok(args)
}

/// Percent-encodes everything outside the unreserved set `[A-Za-z0-9-_.~]`, byte by byte
/// (so UTF-8 letters such as `ş` become `%C5%9F`).
fn percent_encode(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

fn http_request(segment: &str, customer: &str, host: &str, token: Option<&str>) -> Vec<u8> {
    let mut r = b"GET /v1/segments/".to_vec();
    percent_encode(segment, &mut r);
    r.extend_from_slice(b"/members/");
    percent_encode(customer, &mut r);
    r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    r.extend_from_slice(host.as_bytes());
    r.extend_from_slice(b"\r\n");
    if let Some(token) = token {
        r.extend_from_slice(b"Authorization: Bearer ");
        r.extend_from_slice(token.as_bytes());
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"\r\n");
    r
}

fn redis_request(segment: &str, customer: &str) -> Vec<u8> {
    let key = format!("seg:{segment}");
    let mut r = Vec::with_capacity(40 + key.len() + customer.len());
    r.extend_from_slice(b"*3\r\n$9\r\nSISMEMBER\r\n");
    for part in [key.as_bytes(), customer.as_bytes()] {
        r.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        r.extend_from_slice(part);
        r.extend_from_slice(b"\r\n");
    }
    r
}

fn load_keys(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (segment, customer) = line
            .split_once('\t')
            .ok_or_else(|| format!("{path}:{}: expected segment_id<TAB>customer_id", n + 1))?;
        if segment.is_empty() || customer.is_empty() {
            return Err(format!("{path}:{}: empty segment or customer id", n + 1));
        }
        keys.push((segment.to_string(), customer.to_string()));
    }
    if keys.is_empty() {
        return Err(format!("{path}: no lookups"));
    }
    Ok(keys)
}

/// What one exchange gave.
enum Outcome {
    /// A valid answer: member or not.
    Answer(bool),
    /// A well-formed answer that counts as an error (non-200); the connection stays usable.
    Refused,
}

/// Why an exchange failed in a way that loses the connection (I/O or a malformed answer).
struct Broken;

impl From<io::Error> for Broken {
    fn from(_: io::Error) -> Self {
        Broken
    }
}

/// One blocking connection with its own read buffer (responses may arrive in pieces).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The server said `Connection: close`: reconnect before the next request.
    closing: bool,
}

const MAX_RESPONSE: usize = 1 << 20;

impl Conn {
    fn open(addr: &std::net::SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            closing: false,
        })
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes into the buffer; an end of stream is an error.
    fn fill(&mut self) -> Result<(), Broken> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_RESPONSE {
                return Err(Broken);
            }
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(Broken);
        }
        self.end += n;
        Ok(())
    }

    /// The length of the pending bytes up to and including the first `pat`, reading as needed.
    fn until(&mut self, pat: &[u8]) -> Result<usize, Broken> {
        let mut from = 0;
        loop {
            let pending = self.pending();
            if let Some(i) = find(&pending[from..], pat) {
                return Ok(from + i + pat.len());
            }
            from = pending.len().saturating_sub(pat.len() - 1);
            self.fill()?;
        }
    }

    fn exchange(&mut self, protocol: Protocol, request: &[u8]) -> Result<Outcome, Broken> {
        self.stream.write_all(request)?;
        match protocol {
            Protocol::Http => self.http_response(),
            Protocol::Redis => self.redis_reply(),
        }
    }

    fn http_response(&mut self) -> Result<Outcome, Broken> {
        let head_len = self.until(b"\r\n\r\n")?;
        let head = &self.buf[self.start..self.start + head_len];
        let head = std::str::from_utf8(head).map_err(|_| Broken)?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().ok_or(Broken)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().ok_or(Broken)?;
        if !version.starts_with("HTTP/1.") {
            return Err(Broken);
        }
        let status: u16 = parts.next().ok_or(Broken)?.parse().map_err(|_| Broken)?;
        let mut length = None;
        let mut close = version == "HTTP/1.0";
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| Broken)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only Content-Length bodies are expected (no chunked encoding).
                return Err(Broken);
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let length = length.ok_or(Broken)?;
        if length > MAX_RESPONSE {
            return Err(Broken);
        }
        self.start += head_len;
        while self.pending().len() < length {
            self.fill()?;
        }
        let body = &self.buf[self.start..self.start + length];
        let outcome = if status == 200 {
            Outcome::Answer(member_field(body).ok_or(Broken)?)
        } else {
            Outcome::Refused
        };
        self.start += length;
        self.closing = close;
        Ok(outcome)
    }

    fn redis_reply(&mut self) -> Result<Outcome, Broken> {
        let len = self.until(b"\r\n")?;
        let line = &self.buf[self.start..self.start + len];
        let outcome = match line {
            b":1\r\n" => Outcome::Answer(true),
            b":0\r\n" => Outcome::Answer(false),
            // An error reply (`-ERR …`) is complete in its line; anything else (bulk, array,
            // another integer) may be followed by more and loses the connection.
            [b'-', ..] => Outcome::Refused,
            _ => return Err(Broken),
        };
        self.start += len;
        Ok(outcome)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of the top-level `"member"` field of a JSON body: `true` or `false`.
fn member_field(body: &[u8]) -> Option<bool> {
    let at = find(body, b"\"member\"")? + b"\"member\"".len();
    let rest = body[at..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    if rest.starts_with(b"true") {
        Some(true)
    } else if rest.starts_with(b"false") {
        Some(false)
    } else {
        None
    }
}

/// A worker's tallies for the measured window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    members: u64,
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

struct Plan {
    protocol: Protocol,
    addr: std::net::SocketAddr,
    requests: Vec<Vec<u8>>,
    measure_from: Instant,
    measure_to: Instant,
}

fn worker(plan: Arc<Plan>, seed: u64) -> Tally {
    let mut tally = Tally::default();
    // A non-zero state, different for every worker, the same from run to run.
    let mut state = seed
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .max(1);
    let n = plan.requests.len() as u64;
    let mut conn: Option<Conn> = None;
    loop {
        let started = Instant::now();
        if started >= plan.measure_to {
            break;
        }
        let measured = started >= plan.measure_from;
        if conn.as_ref().is_none_or(|c| c.closing) {
            match Conn::open(&plan.addr) {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    conn = None;
                    if measured {
                        tally.errors += 1;
                    }
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let request = &plan.requests[(xorshift(&mut state) % n) as usize];
        let c = conn.as_mut().expect("connected above");
        let result = c.exchange(plan.protocol, request);
        let finished = Instant::now();
        let counted = measured && finished <= plan.measure_to;
        match result {
            Ok(Outcome::Answer(member)) => {
                if counted {
                    let us = finished.duration_since(started).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                    tally.members += u64::from(member);
                }
            }
            Ok(Outcome::Refused) => {
                if counted {
                    tally.errors += 1;
                }
            }
            Err(Broken) => {
                conn = None;
                if counted {
                    tally.errors += 1;
                }
            }
        }
    }
    tally
}

/// The latency below or at which a fraction `q` of the sorted sample lies (nearest rank).
fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let keys = match load_keys(&args.keys) {
        Ok(keys) => keys,
        Err(message) => {
            eprintln!("bench-lookup: {message}");
            return ExitCode::from(2);
        }
    };
    let addr = match args.addr.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!("bench-lookup: {} resolves to no address", args.addr);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("bench-lookup: {}: {e}", args.addr);
            return ExitCode::from(2);
        }
    };
    let requests: Vec<Vec<u8>> = keys
        .iter()
        .map(|(segment, customer)| match args.protocol {
            Protocol::Http => http_request(segment, customer, &args.addr, args.token.as_deref()),
            Protocol::Redis => redis_request(segment, customer),
        })
        .collect();

    // Fail early and clearly when nothing answers, rather than report a run of errors.
    match Conn::open(&addr) {
        Ok(mut c) => {
            if c.exchange(args.protocol, &requests[0]).is_err() {
                eprintln!(
                    "bench-lookup: {} at {} gave no valid answer to the first request",
                    args.protocol.name(),
                    args.addr
                );
                return ExitCode::from(1);
            }
        }
        Err(e) => {
            eprintln!("bench-lookup: cannot connect to {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    }

    let now = Instant::now();
    let measure_from = now + Duration::from_secs_f64(args.warmup);
    let plan = Arc::new(Plan {
        protocol: args.protocol,
        addr,
        requests,
        measure_from,
        measure_to: measure_from + Duration::from_secs_f64(args.duration),
    });
    eprintln!(
        "bench-lookup: {} {} connections to {} for {} s (+{} s warm-up), {} lookups",
        args.protocol.name(),
        args.connections,
        args.addr,
        args.duration,
        args.warmup,
        keys.len()
    );
    let handles: Vec<_> = (0..args.connections)
        .map(|i| {
            let plan = Arc::clone(&plan);
            let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            thread::Builder::new()
                .name(format!("lookup-{i}"))
                .spawn(move || worker(plan, seed))
        })
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("bench-lookup: cannot start a worker thread: {e}");
            std::process::exit(1);
        });
    let mut all = Vec::new();
    let mut errors = 0;
    let mut members = 0;
    for h in handles {
        let Ok(t) = h.join() else {
            eprintln!("bench-lookup: a worker thread panicked");
            return ExitCode::from(1);
        };
        all.extend_from_slice(&t.latencies_us);
        errors += t.errors;
        members += t.members;
    }
    all.sort_unstable();
    let requests = all.len() as u64;
    println!(
        "{{\"protocol\":\"{}\",\"connections\":{},\"duration_s\":{},\"requests\":{},\"errors\":{},\
\"rps\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{},\
\"members_found\":{}}}",
        args.protocol.name(),
        args.connections,
        args.duration,
        requests,
        errors,
        requests as f64 / args.duration,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0),
        members
    );
    if requests == 0 {
        eprintln!("bench-lookup: no successful request in the measured window");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_non_ascii_bytes() {
        let mut out = Vec::new();
        percent_encode("c-ş İ/1_.~", &mut out);
        assert_eq!(out, b"c-%C5%9F%20%C4%B0%2F1_.~");
    }

    #[test]
    fn redis_bulk_lengths_are_bytes() {
        let r = redis_request("vip", "ğ1");
        assert_eq!(
            r,
            b"*3\r\n$9\r\nSISMEMBER\r\n$7\r\nseg:vip\r\n$3\r\n\xc4\x9f1\r\n"
        );
    }

    #[test]
    fn reads_the_member_field() {
        assert_eq!(
            member_field(br#"{"member":true,"since":"2025-01-01T00:00:00Z"}"#),
            Some(true)
        );
        assert_eq!(
            member_field(br#"{ "member" : false, "since": null }"#),
            Some(false)
        );
        assert_eq!(member_field(br#"{"since":null}"#), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 0.999), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
