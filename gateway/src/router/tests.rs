use super::*;
use crate::config::{Config, Source};
use http::Method;

fn router(text: &str) -> Router {
    let config = Config::parse(&Source::new("test", text)).expect("valid config");
    let mut problems = Vec::new();
    let router = Router::build(
        &config.routes,
        &HashMap::new(),
        &HashMap::new(),
        &[],
        &mut |_, e| problems.push(e),
    );
    assert!(problems.is_empty(), "{problems:?}");
    router
}

fn request(method: Method, path: &str) -> Parts {
    let req = http::Request::builder().method(method).uri(path);
    req.body(()).unwrap().into_parts().0
}

fn find<'a>(r: &'a Router, host: &str, method: Method, path: &str) -> Option<&'a str> {
    r.lookup(host, path, &request(method, path))
        .map(|m| &*m.route.name)
}

#[test]
fn more_predicates_win_over_file_order() {
    let r = router(
        r#"
[[routes]]
name = "plain"
path = "/a/"
respond = { body = "" }
[[routes]]
name = "post"
path = "/a/"
methods = ["POST"]
respond = { body = "" }
"#,
    );
    assert_eq!(find(&r, "h", Method::POST, "/a/x"), Some("post"));
    assert_eq!(find(&r, "h", Method::GET, "/a/x"), Some("plain"));
}

#[test]
fn prefix_match_reports_matched_length() {
    let r = router("[[routes]]\nname = \"a\"\npath = \"/api\"\nrespond = { body = \"\" }\n");
    let m = r
        .lookup("h", "/api/users", &request(Method::GET, "/api/users"))
        .unwrap();
    assert_eq!(m.prefix_len, 4);
    assert!(r.lookup("h", "/ap", &request(Method::GET, "/ap")).is_none());
}

#[test]
fn ten_thousand_routes_compile_and_resolve() {
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!(
            "[[routes]]\nname = \"r{i}\"\nhosts = [\"h{}.example.com\"]\npath = \"/svc{i}/\"\nrespond = {{ body = \"\" }}\n",
            i % 50
        ));
    }
    let r = router(&text);
    for i in (0..10_000).step_by(331) {
        let host = format!("h{}.example.com", i % 50);
        let path = format!("/svc{i}/items/1");
        let expected = format!("r{i}");
        assert_eq!(find(&r, &host, Method::GET, &path), Some(expected.as_str()));
    }
    assert_eq!(find(&r, "h1.example.com", Method::GET, "/svc2/x"), None);
}
