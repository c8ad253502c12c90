#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! `tidegate check FILE`: every broken config is refused with FILE:LINE:COLUMN and a message
//! that names the problem; a good one passes.

mod support;

use std::process::Command;

fn check(text: &str) -> (bool, String) {
    let dir = support::TempDir::new("check");
    let path = dir.path("broken.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(support::binary())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE");
    (out.status.success(), stderr)
}

#[test]
fn broken_configs_are_refused_with_positions() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown key",
            "[server]\nlisten = [\"127.0.0.1:1\"]\nlistne = 3\n",
            &["FILE:3:1: unknown field `listne`"],
        ),
        (
            "bad type",
            "[server]\nthreads = \"two\"\n",
            &["FILE:2:11: invalid type: string \"two\", expected usize"],
        ),
        (
            "toml syntax",
            "[[routes]\nname = \"x\"\n",
            &["FILE:1:"],
        ),
        (
            "missing service and duplicate route",
            "[[routes]]\nname = \"a\"\nservice = \"nope\"\n\n[[routes]]\nname = \"a\"\nrespond = { body = \"x\" }\n",
            &[
                "FILE:3:11: route \"a\" refers to unknown service \"nope\"",
                "FILE:6:8: duplicate route name \"a\"",
            ],
        ),
        (
            "bad regex",
            "[[routes]]\nname = \"r\"\npath = \"~^/v[0-9+/\"\nrespond = { body = \"x\" }\n",
            &["FILE:3:8: bad path regex"],
        ),
        (
            "bad addresses",
            "[server]\nlisten = [\"localhost\"]\n[[services]]\nname = \"s\"\nendpoints = [{ addr = \"10.0.0.1\" }]\n",
            &["FILE:2:11: bad listen address", "FILE:5:23: bad endpoint address \"10.0.0.1\""],
        ),
        (
            "two actions",
            "[[routes]]\nname = \"r\"\nrespond = { body = \"x\" }\nredirect = { to = \"/y\" }\n",
            &["FILE:2:8: route \"r\" needs exactly one of"],
        ),
        (
            "hash without key",
            "[[services]]\nname = \"s\"\nlb = \"hash\"\nendpoints = [{ addr = \"127.0.0.1:1\" }]\n",
            &["FILE:2:8: service \"s\" uses lb = \"hash\" but has no hash_key"],
        ),
        (
            "subset and split together",
            "[[services]]\nname = \"s\"\nendpoints = [{ addr = \"127.0.0.1:1\" }]\n[[routes]]\nname = \"r\"\nservice = \"s\"\nsubset = { stage = \"blue\" }\nsplit = [{ labels = { stage = \"blue\" }, weight = 0 }]\n",
            &["FILE:7:10: route \"r\" has both `subset` and `split`", "FILE:8:9: route \"r\": split weights add up to 0"],
        ),
        (
            "bad method and host",
            "[[routes]]\nname = \"r\"\nhosts = [\"a.*.com\"]\nmethods = [\"FETCH\"]\nrespond = { body = \"x\" }\n",
            &["FILE:3:10: bad host", "FILE:4:12: unknown method \"FETCH\""],
        ),
    ];
    for (what, text, expected) in cases {
        let (ok, stderr) = check(text);
        assert!(!ok, "{what}: accepted");
        for e in *expected {
            assert!(stderr.contains(e), "{what}: expected {e:?} in:\n{stderr}");
        }
        // One line per problem, each positioned.
        for line in stderr.lines() {
            assert!(
                line.starts_with("FILE:"),
                "{what}: unpositioned line {line:?}"
            );
        }
    }
}

#[test]
fn good_config_passes_and_the_default_is_good() {
    let (ok, out) = check(support::upstream_free_config());
    assert!(ok, "{out}");
    let (ok, out) = check(include_str!("../../conf/default.toml"));
    assert!(ok, "{out}");
}
