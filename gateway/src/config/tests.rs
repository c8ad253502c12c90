use super::*;

fn errors(text: &str) -> Vec<String> {
    match Config::parse(&Source::new("t", text)) {
        Ok(_) => vec![],
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn the_embedded_default_is_valid() {
    assert!(errors(EMBEDDED_DEFAULT).is_empty());
}

#[test]
fn reports_every_semantic_error_in_order() {
    let text =
        "[[routes]]\nname = \"a\"\nservice = \"x\"\n[[routes]]\nname = \"a\"\nservice = \"y\"\n";
    let e = errors(text);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].starts_with("3:11: route \"a\" refers to unknown service \"x\""));
    assert!(e[1].starts_with("5:8: duplicate route name"));
    assert!(e[2].starts_with("6:11:"));
}

#[test]
fn line_and_column_count_characters() {
    assert_eq!(error::line_column("ab\ncé", 6), (2, 3));
    assert_eq!(error::line_column("", 0), (1, 1));
}
