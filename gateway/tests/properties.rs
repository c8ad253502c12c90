#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Property tests (stable `proptest`, a bounded number of cases each) over the parsers that
//! face the outside: the request framing check and chunk scanner, the path normaliser, the
//! PROXY protocol parser, the WebSocket frame tracker, the router, and the config parser.
//! Nothing may panic on any input, and each answer must not depend on how the input is cut.
//! A failure proptest finds is shrunk and should become a plain regression test.

use proptest::prelude::*;
use tidegate::config::{EscapedSlashes, Source};
use tidegate::edge::chunked::{ChunkScanner, Scanned};
use tidegate::edge::framing;
use tidegate::router::{normalize_path, PathPolicy};
use tidegate::tunnel::FrameTracker;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look like HTTP often enough to reach deep into the parsers.
fn http_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"POST /a HTTP/1.0\r\n".to_vec()),
        Just(b"Host: h\r\n".to_vec()),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"Content-Length: 5, 5\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Transfer-Encoding: gzip, chunked\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_framing_check_never_panics(bytes in http_like()) {
        if let Some(len) = framing::head_end(&bytes) {
            let verdict = framing::check(&bytes, len);
            if let Err(refusal) = &verdict {
                prop_assert!((400..=505).contains(&refusal.status));
            }
        }
    }

    #[test]
    fn the_chunk_scanner_does_not_care_how_a_body_is_cut(body in http_like(), cut in any::<prop::sample::Index>()) {
        let whole = ChunkScanner::default().scan(&body);
        let at = cut.index(body.len() + 1);
        let mut s = ChunkScanner::default();
        let pieces = match s.scan(&body[..at]) {
            Scanned::More(n) => {
                prop_assert_eq!(n, at);
                match s.scan(&body[at..]) {
                    Scanned::More(m) => Scanned::More(n + m),
                    Scanned::Done(m) => Scanned::Done(n + m),
                    invalid => invalid,
                }
            }
            other => other,
        };
        match (&whole, &pieces) {
            (Scanned::Invalid(_), Scanned::Invalid(_)) => {}
            _ => prop_assert_eq!(whole, pieces),
        }
    }

    #[test]
    fn path_normalisation_is_idempotent_and_clean(path in "(/|%2[eEfF]|%5[cC]|%41|%00|\\.|\\.\\.|/\\.\\./|//|[a-z~_-]|%[0-9a-fA-F]{2}|%|\\\\){0,24}") {
        for slashes in [EscapedSlashes::Reject, EscapedSlashes::Keep, EscapedSlashes::Decode] {
            for merge_slashes in [true, false] {
                let policy = PathPolicy { merge_slashes, escaped_slashes: slashes };
                if let Ok(once) = normalize_path(&path, policy) {
                    prop_assert!(once.starts_with('/'), "{once}");
                    prop_assert!(!once.split('/').any(|s| s == "." || s == ".."), "{once}");
                    if merge_slashes {
                        prop_assert!(!once.contains("//"), "{once}");
                    }
                    let twice = normalize_path(&once, policy).unwrap();
                    prop_assert_eq!(&*once, &*twice);
                }
            }
        }
    }

    #[test]
    fn the_proxy_header_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), v1 in any::<bool>()) {
        let mut input = if v1 { b"PROXY TCP4 ".to_vec() } else { b"\r\n\r\n\0\r\nQUIT\n".to_vec() };
        input.extend(bytes);
        if let Ok(Some((_, used))) = tidegate::proxy_protocol::parse_prefix(&input) {
            prop_assert!(used <= input.len());
        }
    }

    #[test]
    fn frame_boundaries_do_not_depend_on_how_a_stream_is_cut(stream in proptest::collection::vec(any::<u8>(), 0..600), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut whole = FrameTracker::default();
        whole.feed(&stream);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = FrameTracker::default();
        let mut last = 0;
        for p in points.into_iter().chain([stream.len()]) {
            pieces.feed(&stream[last..p]);
            last = p;
        }
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn the_config_parser_and_compile_never_panic(text in "(\\[\\[routes\\]\\]\nname = \"r\"\n|path = \"[/=~][a-z(\\[*]{0,4}\"\n|service = \"s\"\n|\\[\\[services\\]\\]\nname = \"s\"\n|endpoints = \\[\\{ addr = \"127\\.0\\.0\\.1:[0-9]{1,5}\" \\}\\]\n|\\[plugins\\.p\\]\ntype = \"(waf|cors|key-auth|request-size)\"\n|plugins = \\[\"p\"\\]\n|\\[edge\\]\nmax_header_bytes = [0-9]{1,7}\n|[a-z =\"\\[\\]{}.,\n]{0,20}){0,8}") {
        // Parse errors are fine; a panic is not. Whatever parses must also compile or be
        // refused with positions.
        if let Err(errors) = tidegate::snapshot::Snapshot::check(Source::new("prop", text.clone())) {
            prop_assert!(!errors.errors.is_empty());
        }
    }

    #[test]
    fn routing_never_panics_and_finds_exact_routes(paths in proptest::collection::vec("/[a-z]{1,4}(/[a-z]{1,3}){0,2}", 1..6), probe in "/[a-z/%.]{0,12}") {
        let mut text = String::new();
        for (i, p) in paths.iter().enumerate() {
            text.push_str(&format!("[[routes]]\nname = \"r{i}\"\npath = \"={p}\"\nrespond = {{ status = 200 }}\n"));
        }
        let snapshot = tidegate::snapshot::Snapshot::check(Source::new("prop", text)).unwrap();
        let req = http::Request::get("/").body(()).unwrap().into_parts().0;
        for (i, p) in paths.iter().enumerate() {
            let found = snapshot.router.lookup("h", p, &req).map(|m| m.route.name.to_string());
            // The first route with this exact path wins.
            let first = paths.iter().position(|q| q == p).unwrap();
            prop_assert_eq!(found, Some(format!("r{first}")), "route {}", i);
        }
        if let Ok(path) = normalize_path(&probe, PathPolicy::default()) {
            let _ = snapshot.router.lookup("h", &path, &req);
        }
    }
}
