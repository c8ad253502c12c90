#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Route table scale: compile-and-apply time and lookup cost at 10 and 10 000 routes.
//! `cargo bench -p tidegate --bench router_scale` prints a markdown table.
//!
//! Plain timing loops (no Criterion) keep the build lean; each figure is the median of
//! several runs, and lookups are averaged over a million calls.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tidegate::config::Source;
use tidegate::gateway::{ChangeSource, Gateway};
use tidegate::snapshot::{Lasting, Snapshot};

fn config(routes: usize, salt: usize) -> String {
    let mut text = String::from(
        "[access_log]\nenabled = false\n[[services]]\nname = \"svc\"\nendpoints = [{ addr = \"127.0.0.1:9\" }]\n",
    );
    for i in 0..routes {
        // A mix like a real SaaS: per-tenant hosts, per-service prefixes, some exact paths,
        // a few method-restricted routes and a handful of regexes.
        let host = match i % 4 {
            0 => String::new(),
            1 => format!("hosts = [\"t{}.chat.example.com\"]\n", i % 200),
            2 => format!("hosts = [\"*.r{}.example.org\"]\n", i % 50),
            _ => format!("hosts = [\"api{}.example.net\"]\n", i % 500),
        };
        let path = match i % 10 {
            0 => format!("=/exact/{i}/ping"),
            9 if i % 1000 == 9 => format!("~^/re{i}/[0-9]+$"),
            _ => format!("/svc{i}/v{}/", i % 3),
        };
        let methods = if i % 7 == 0 {
            "methods = [\"GET\", \"POST\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[[routes]]\nname = \"r{i}-{salt}\"\n{host}path = \"{path}\"\n{methods}service = \"svc\"\n"
        ));
    }
    text
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // The predicates read only the method and headers here, so one request serves all.
    let req = http::Request::get("/").body(()).unwrap().into_parts().0;
    let mut rows = Vec::new();
    let mut lookup_ns = Vec::new();
    for routes in [10usize, 10_000] {
        let text = config(routes, 0);
        let lasting = Lasting::default();
        let build = median(
            (0..7)
                .map(|_| {
                    let t = Instant::now();
                    black_box(
                        Snapshot::build(Source::new("bench", text.clone()), 1, &lasting).unwrap(),
                    );
                    t.elapsed()
                })
                .collect(),
        );
        // The whole pipeline, as the admin API runs it: build, swap, tunnel reconcile.
        let gateway = Gateway::start(Source::new("bench", config(routes, 1))).unwrap();
        let apply = median(
            (0..7)
                .map(|k| {
                    let source = Source::new("bench", config(routes, k + 2));
                    let t = Instant::now();
                    gateway.apply(source, ChangeSource::AdminApi).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let snapshot = Snapshot::build(Source::new("bench", text), 1, &lasting).unwrap();
        // Requests that hit routes spread over the table, plus misses that fall back.
        let requests: Vec<(String, String)> = (0..1000)
            .map(|k| {
                let i = (k * 7919) % routes;
                let host = match i % 4 {
                    1 => format!("t{}.chat.example.com", i % 200),
                    2 => format!("x.r{}.example.org", i % 50),
                    3 => format!("api{}.example.net", i % 500),
                    _ => "plain.example.com".to_string(),
                };
                let path = if i % 10 == 0 {
                    format!("/exact/{i}/ping")
                } else {
                    format!("/svc{i}/v{}/users/42", i % 3)
                };
                (host, path)
            })
            .collect();
        let rounds = 1_000;
        let mut found = 0usize;
        let runs: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..rounds {
                    for (host, path) in &requests {
                        if snapshot
                            .router
                            .lookup(black_box(host), black_box(path), &req)
                            .is_some()
                        {
                            found += 1;
                        }
                    }
                }
                t.elapsed()
            })
            .collect();
        let per_lookup = median(runs).as_nanos() as f64 / (rounds * requests.len()) as f64;
        black_box(found);
        lookup_ns.push(per_lookup);
        rows.push(format!(
            "| {routes} | {:.2} ms | {:.2} ms | {per_lookup:.0} ns |",
            build.as_secs_f64() * 1e3,
            apply.as_secs_f64() * 1e3
        ));
    }
    println!("| routes | build snapshot | apply (build + swap) | lookup |");
    println!("| ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
    println!(
        "\nlookup at 10 000 routes / at 10 routes: {:.2}x",
        lookup_ns[1] / lookup_ns[0]
    );
}
