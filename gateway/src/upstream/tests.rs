use super::*;
use crate::config::{Config, Source};
use std::sync::atomic::Ordering;

fn no_errors(_: Option<std::ops::Range<usize>>, e: String) {
    panic!("{e}");
}

fn service(endpoints: &str, lb: &str) -> Arc<Members> {
    let text = format!("[[services]]\nname = \"s\"\nlb = \"{lb}\"\nhash_key = \"header:x\"\nendpoints = [{endpoints}]\n");
    let config = Config::parse(&Source::new("test", text)).expect("valid");
    Service::build(
        &config.services[0],
        &EndpointStates::default(),
        None,
        &mut no_errors,
    )
    .expect("builds")
    .members()
}

#[test]
fn retries_never_pick_a_tried_endpoint() {
    let s = service(
        r#"{ addr = "127.0.0.1:1" }, { addr = "127.0.0.1:2" }, { addr = "127.0.0.1:3" }"#,
        "round_robin",
    );
    let mut tried = Tried::default();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let i = s.select(b"", &tried).expect("one left");
        assert!(!seen.contains(&i));
        seen.push(i);
        tried.add(i);
    }
    assert_eq!(s.select(b"", &tried), None);
}

#[test]
fn weight_zero_gets_nothing_and_hash_is_stable() {
    let s = service(
        r#"{ addr = "127.0.0.1:1", weight = 0 }, { addr = "127.0.0.1:2" }"#,
        "hash",
    );
    for key in ["a", "b", "c", "d"] {
        assert_eq!(s.select(key.as_bytes(), &Tried::default()), Some(1));
    }
    let s = service(
        r#"{ addr = "127.0.0.1:1" }, { addr = "127.0.0.1:2" }"#,
        "hash",
    );
    let first = s.select(b"tenant-7", &Tried::default());
    for _ in 0..10 {
        assert_eq!(s.select(b"tenant-7", &Tried::default()), first);
    }
}

#[test]
fn endpoint_state_outlives_a_rebuild() {
    let states = EndpointStates::default();
    let text = "[[services]]\nname = \"s\"\nendpoints = [{ addr = \"127.0.0.1:9\" }]\n";
    let config = Config::parse(&Source::new("t", text)).unwrap();
    let a = Service::build(&config.services[0], &states, None, &mut no_errors)
        .unwrap()
        .members();
    a.endpoints[0].state.active.fetch_add(3, Ordering::Relaxed);
    let b = Service::build(&config.services[0], &states, None, &mut no_errors)
        .unwrap()
        .members();
    assert_eq!(b.endpoints[0].state.active.load(Ordering::Relaxed), 3);
}

#[test]
fn discovered_endpoints_replace_in_place() {
    let states = EndpointStates::default();
    let text = "[nacos]\nservers = [\"http://127.0.0.1:1\"]\n[[services]]\nname = \"s\"\nnacos = { service = \"chat\" }\n";
    let config = Config::parse(&Source::new("t", text)).unwrap();
    let s = Service::build(&config.services[0], &states, None, &mut no_errors).unwrap();
    assert!(s.members().endpoints.is_empty());
    let before = s.members();
    let spec = |port| EndpointSpec {
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        weight: 1,
        labels: Default::default(),
        name: None,
    };
    s.replace_members(7, &[spec(1), spec(2)], &states);
    assert_eq!(s.members().version, 7);
    assert_eq!(s.members().endpoints.len(), 2);
    // A request that started before keeps its set.
    assert!(before.endpoints.is_empty());
}
