use super::*;

fn errors(text: &str) -> Vec<String> {
    match Config::parse(&Source::new("t", text)) {
        Ok(_) => vec![],
        Err(e) => e
            .errors
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
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

#[test]
fn nacos_bindings_are_checked_with_positions() {
    let e = errors("[[services]]\nname = \"s\"\nnacos = { service = \"chat\" }\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("3:9: service \"s\" is bound to nacos but there is no [nacos]"));
    let e = errors(
        "[nacos]\nservers = [\"10.0.0.1:8848\"]\n[[services]]\nname = \"s\"\nendpoints = [{ addr = \"127.0.0.1:1\" }]\nnacos = { service = \"chat\" }\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("2:12: nacos server \"10.0.0.1:8848\" must be an http:// URL"));
    assert!(e[1].starts_with("6:9: service \"s\" has both endpoints and a nacos binding"));
    let e = errors("[config]\nsource = \"nacos\"\n");
    assert!(e[0].contains("needs a [nacos] section"), "{e:?}");
}

#[test]
fn kubernetes_bindings_are_checked_with_positions() {
    let e = errors(
        "[[services]]\nname = \"s\"\nkubernetes = { namespace = \"chat\", service = \"chat\" }\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("3:14: service \"s\" is bound to kubernetes but there is no [kubernetes]"),
        "{e:?}"
    );
    let e = errors(
        "[kubernetes]\napi_server = \"ftp://x\"\n[nacos]\nservers = [\"http://127.0.0.1:8848\"]\n[[services]]\nname = \"s\"\nnacos = { service = \"chat\" }\nkubernetes = { service = \"Chat_Svc\", port = 0 }\n",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "2:14: kubernetes.api_server \"ftp://x\" is not an http:// or https:// URL"
        ),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("8:14: service \"s\" has both a nacos and a kubernetes binding"),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("8:14: kubernetes service \"Chat_Svc\" is not a valid Service name"),
        "{e:?}"
    );
    let e = errors("[kubernetes]\n[[services]]\nname = \"s\"\nkubernetes = [{ service = \"a\" }, { service = \"a\" }]\n");
    assert!(e[0].contains("binds default/a twice"), "{e:?}");
    let e = errors("[kubernetes]\n[[services]]\nname = \"s\"\nkubernetes = []\n");
    assert!(e[0].contains("binds no Service"), "{e:?}");
    // An empty section is "in the cluster"; a port by name or number.
    for port in ["\"http\"", "8080"] {
        let text = format!("[kubernetes]\n[[services]]\nname = \"s\"\nkubernetes = {{ service = \"chat\", port = {port} }}\n");
        assert!(errors(&text).is_empty(), "{:?}", errors(&text));
    }
}

#[test]
fn a_shared_config_keeps_each_gateway_s_own_sections() {
    let bootstrap =
        Config::parse(&Source::new("own", "[admin]\ntoken = \"t\"\n[nacos]\nservers = [\"http://127.0.0.1:8848\"]\n[config]\nsource = \"nacos\"\n"))
            .unwrap();
    let overlay = Overlay::of(&bootstrap);
    let shared = Config::parse(
        &Source::new(
            "shared",
            "[[routes]]\nname = \"r\"\nrespond = { status = 200 }\n",
        )
        .with_overlay(overlay.clone()),
    )
    .unwrap();
    assert_eq!(shared.admin.token.as_deref(), Some("t"));
    assert!(shared.nacos.is_some());
    let refused = Config::parse(
        &Source::new(
            "shared",
            "[server]\nthreads = 8\n[[routes]]\nname = \"r\"\nrespond = { status = 200 }\n",
        )
        .with_overlay(overlay),
    )
    .unwrap_err();
    assert!(refused.errors[0]
        .to_string()
        .starts_with("1:2: [server] belongs in each gateway's own file"));
}

#[test]
fn the_shipped_example_configs_are_valid() {
    for (name, text) in [
        ("example.toml", include_str!("../../../conf/example.toml")),
        (
            "nacos-example.toml",
            include_str!("../../../conf/nacos-example.toml"),
        ),
    ] {
        assert!(errors(text).is_empty(), "{name}: {:?}", errors(text));
    }
}

#[test]
fn tls_upstreams_by_name_need_no_sni_but_those_by_ip_do() {
    let by_name = "[[services]]\nname = \"p\"\nprotocol = \"https\"\nendpoints = [{ addr = \"api.partner.example:443\" }]\n";
    assert!(errors(by_name).is_empty(), "{:?}", errors(by_name));
    let by_ip = "[[services]]\nname = \"p\"\nprotocol = \"https\"\nendpoints = [{ addr = \"api.partner.example:443\" }, { addr = \"10.0.0.5:443\" }]\n";
    let e = errors(by_ip);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("needs tls.sni"), "{e:?}");
    let e = errors(
        "[dns]\nmin_ttl_seconds = 0\nmax_ttl_seconds = 0\ntimeout_ms = 0\n[tls]\nticket_key_rotation_seconds = 0\nticket_keys_kept = 17\n",
    );
    assert_eq!(e.len(), 4, "{e:?}");
    assert!(e[0].starts_with("2:19: dns.min_ttl_seconds"), "{e:?}");
    assert!(e[1].starts_with("4:14: dns.timeout_ms"), "{e:?}");
    assert!(
        e[2].starts_with("6:31: tls.ticket_key_rotation_seconds"),
        "{e:?}"
    );
    assert!(e[3].starts_with("7:20: tls.ticket_keys_kept"), "{e:?}");
}

#[test]
fn the_upstream_pool_holds_1024_by_default_and_a_change_needs_a_restart() {
    let default = Config::parse(&Source::new("t", "")).unwrap();
    assert_eq!(default.server.upstream_keepalive_pool_size, 1024);
    let bigger = Config::parse(&Source::new(
        "t",
        "[server]\nupstream_keepalive_pool_size = 4096\n",
    ))
    .unwrap();
    assert!(default.server.needs_restart_for(&bigger.server));
    let e = errors("[server]\nupstream_keepalive_pool_size = 0\n");
    assert!(
        e.iter()
            .any(|e| e.contains("upstream_keepalive_pool_size must be between 1")),
        "{e:?}"
    );
}

#[test]
fn cookie_and_query_predicates_that_could_never_match_are_refused_with_positions() {
    let route = |extra: &str| format!("[[routes]]\nname = \"r\"\n{extra}\nrespond = {{}}\n");
    assert!(errors(&route(
        "cookies = { canary = \"always\" }\nquery = { v = \"a b\" }"
    ))
    .is_empty());
    let e = errors(&route("cookies = { \"a b\" = \"1\", c = \"x;y\" }"));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("3:11: bad cookie name \"a b\""), "{e:?}");
    assert!(
        e[1].starts_with("3:11: bad value for cookie \"c\""),
        "{e:?}"
    );
    let e = errors(&route("query = { \"\" = \"1\" }"));
    assert!(
        e[0].starts_with("3:9: a query parameter needs a name"),
        "{e:?}"
    );
}
