//! The WAF's response side: the CRS's outbound rules on the upstream's status and headers
//! (phase 3) and on a bounded prefix of its body (phase 4), in the open transaction the
//! request left (see `crs/mod.rs` for why this runs on the event loop).
//!
//! A body of an inspected type with a declared length is held back, piece by piece, until
//! `response_body_limit` bytes are in or it ends; then phase 4 runs on that prefix and
//! everything held is released at once — or, on a block, nothing is, and the response is
//! cut. A body of unknown length (chunked, HTTP/2 without a length: streams, server-sent
//! chat, long polls) is inspected on its first piece and never held: holding a stream until
//! 64 KiB arrive could stall it for minutes.

use super::crs::engine::{ResponseView, Transaction, Verdict};
use super::crs::rules::Responses;
use super::{Profile, Side, Waf};
use crate::{Ctx, Reply};
use bytes::{Bytes, BytesMut};
use pingora_http::ResponseHeader;
use std::sync::Arc;

/// What the plugin keeps between a request that passed and the end of its response.
pub(super) enum Stage {
    /// Waiting for the response header.
    Open {
        tx: Transaction,
        profile: Arc<Profile>,
        /// A HEAD request: its response has no body.
        head: bool,
    },
    /// Holding back the response body until its inspected prefix is in.
    Holding {
        tx: Transaction,
        profile: Arc<Profile>,
        /// What phase 3 matched (reported with the body's verdict).
        headers: Verdict,
        held: Vec<Bytes>,
        len: usize,
        /// No declared length: inspect the first piece, hold nothing.
        stream: bool,
    },
}

impl Waf {
    /// Phase 3 on the response header; then either phase 4 at once (no body to read) or
    /// the body held back for it.
    pub(super) fn inspect_response(
        &self,
        resp: &ResponseHeader,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        // An interim answer (100 Continue, 103 Early Hints) comes before the real one: the
        // transaction waits for that.
        if resp.status.is_informational() && resp.status != http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(());
        }
        let Some(Stage::Open {
            mut tx,
            profile,
            head,
        }) = cx.take::<Stage>()
        else {
            return Ok(());
        };
        let Some(responses) = &profile.responses else {
            return Ok(());
        };
        let protocol = match resp.version {
            http::Version::HTTP_2 => "HTTP 2.0",
            http::Version::HTTP_10 => "HTTP 1.0",
            _ => "HTTP 1.1",
        };
        let view = ResponseView {
            status: resp.status.as_u16(),
            protocol,
            headers: resp
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
                .collect(),
        };
        let headers = tx.inspect_response_headers(&view);
        if headers.disruptive {
            return self.conclude(&profile, &headers, Side::Response, cx);
        }
        if !head && body_inspected(resp, responses) {
            let stream = !resp.headers.contains_key(http::header::CONTENT_LENGTH);
            cx.keep(Stage::Holding {
                tx,
                profile,
                headers,
                held: Vec::new(),
                len: 0,
                stream,
            });
            return Ok(());
        }
        let mut verdict = tx.inspect_response_body(&[]);
        drop(tx);
        verdict.merge(headers);
        self.conclude(&profile, &verdict, Side::Response, cx)
    }

    /// Holds `body` back until the inspected prefix is in, then runs phase 4 on it and
    /// releases everything held — or refuses, and nothing held is sent.
    pub(super) fn inspect_response_body(
        &self,
        body: &mut Option<Bytes>,
        end: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<(), String> {
        let Some(Stage::Holding {
            profile,
            held,
            len,
            stream,
            ..
        }) = cx.kept::<Stage>()
        else {
            return Ok(());
        };
        if let Some(piece) = body.take().filter(|b| !b.is_empty()) {
            *len += piece.len();
            held.push(piece);
        }
        let limit = profile.responses.as_ref().map_or(0, |r| r.body_limit);
        if *len < limit && !end && !(*stream && *len > 0) {
            return Ok(());
        }
        let Some(Stage::Holding {
            mut tx,
            profile,
            headers,
            held,
            len,
            ..
        }) = cx.take::<Stage>()
        else {
            return Ok(());
        };
        let all = concat(held, len);
        let mut verdict = tx.inspect_response_body(&all[..len.min(limit)]);
        drop(tx);
        verdict.merge(headers);
        match self.conclude(&profile, &verdict, Side::Response, cx) {
            Ok(()) => {
                *body = Some(all);
                Ok(())
            }
            Err(_) => Err(format!(
                "the response body on route {} was blocked: response cut",
                cx.route
            )),
        }
    }
}

/// Whether phase 4 reads this response's body: one of the listed types, and a body at all.
fn body_inspected(resp: &ResponseHeader, responses: &Responses) -> bool {
    let status = resp.status.as_u16();
    if status < 200 || status == 204 || status == 304 {
        return false;
    }
    let empty = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    let Some(kind) = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let kind = kind.split(';').next().unwrap_or("").trim();
    !empty
        && responses
            .body_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(kind))
}

/// The held pieces as one buffer (no copy for one piece).
fn concat(mut held: Vec<Bytes>, len: usize) -> Bytes {
    if held.len() == 1 {
        return held.pop().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(len);
    for piece in held {
        all.extend_from_slice(&piece);
    }
    all.freeze()
}

#[cfg(test)]
mod tests {
    use crate::{testing, Chain, Reply, RequestState};
    use bytes::Bytes;
    use pingora_http::ResponseHeader;

    /// What MySQL prints on a broken query: CRS 951230 (and the outbound score) at PL1.
    const LEAK: &str = "<p>You have an error in your SQL syntax; check the manual that \
                        corresponds to your MySQL server version for the right syntax to use \
                        near '1'' at line 1</p>";

    /// One exchange through a chain of the WAF alone: a benign GET, then a 200 of
    /// `content_type` whose body comes in `pieces`.
    struct Exchange {
        /// The header phase's answer.
        header: Result<(), Reply>,
        /// Per piece, the bytes the body phase let through (empty: held back).
        released: Vec<Vec<u8>>,
        /// Why the response was cut, if it was.
        cut: Option<String>,
        state: RequestState,
        chain: Chain,
    }

    /// The body with a declared length (Content-Length).
    async fn exchange(table: &str, content_type: &str, pieces: &[&str]) -> Exchange {
        exchange_framed(table, content_type, pieces, true).await
    }

    async fn exchange_framed(
        table: &str,
        content_type: &str,
        pieces: &[&str],
        declared: bool,
    ) -> Exchange {
        crate::waf::tests::require_crs();
        let chain = Chain::new(vec![testing::plugin(&format!("type = \"waf\"\n{table}"))]);
        let req = testing::request(
            "GET",
            "/orders?id=7",
            &[
                ("host", "shop.example.com"),
                (
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0",
                ),
                ("accept", "text/html,*/*;q=0.8"),
            ],
        );
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain
            .request(&req, &mut state)
            .await
            .expect("the request passes");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("content-type", content_type).unwrap();
        resp.insert_header("x-debug-sql", "select 1").unwrap();
        if declared {
            let length: usize = pieces.iter().map(|p| p.len()).sum();
            resp.insert_header("content-length", length).unwrap();
        }
        let header = chain.upstream_response(&resp, &mut state);
        let (mut released, mut cut) = (Vec::new(), None);
        if header.is_ok() {
            for (i, piece) in pieces.iter().enumerate() {
                let mut body = Some(Bytes::from(piece.to_string()));
                match chain.response_body(&mut body, i + 1 == pieces.len(), &mut state) {
                    Ok(()) => released.push(body.map(|b| b.to_vec()).unwrap_or_default()),
                    Err(why) => {
                        cut = Some(why);
                        break;
                    }
                }
            }
        }
        Exchange {
            header,
            released,
            cut,
            state,
            chain,
        }
    }

    impl Exchange {
        /// The access log's `waf_response` field.
        fn logged(&self) -> Option<serde_json::Value> {
            self.state
                .caller
                .log
                .iter()
                .find(|(k, _)| *k == "waf_response")
                .map(|(_, v)| v.clone())
        }

        fn rules(&self) -> Vec<u64> {
            self.logged().map_or_else(Vec::new, |v| {
                v["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_u64().unwrap())
                    .collect()
            })
        }
    }

    #[tokio::test]
    async fn a_leak_in_an_html_body_is_cut_before_any_of_it_is_sent() {
        let x = exchange("", "text/html", &["<html><body>", LEAK, "</body></html>"]).await;
        assert!(x.header.is_ok());
        // The first two pieces were held back; the last one ended the body and was refused.
        assert_eq!(x.released, [Vec::<u8>::new(), Vec::new()]);
        let why = x.cut.as_deref().expect("the response is cut");
        assert!(why.contains("response cut"), "{why}");
        let rules = x.rules();
        assert!(rules.contains(&951230), "{rules:?}");
        assert!(
            rules.contains(&959100),
            "the outbound evaluation: {rules:?}"
        );
        let logged = x.logged().unwrap();
        assert_eq!(logged["action"], "block");
        assert!(logged["score"].as_u64().unwrap() >= 4, "{logged}");
    }

    #[tokio::test]
    async fn a_json_error_with_a_charset_is_inspected_too() {
        let body = format!("{{\"error\":\"{LEAK}\"}}");
        let x = exchange("", "application/json; charset=utf-8", &[&body]).await;
        assert!(x.cut.is_some(), "{:?}", x.released);
        assert!(x.rules().contains(&951230));
    }

    #[tokio::test]
    async fn an_interim_answer_leaves_the_transaction_for_the_real_one() {
        let x = exchange("", "text/html", &["<p>fine</p>"]).await;
        assert!(x.cut.is_none());
        // The same exchange with a 100 Continue first: the 200 is still inspected.
        crate::waf::tests::require_crs();
        let chain = x.chain;
        let req = testing::request(
            "POST",
            "/upload",
            &[("host", "shop.example.com"), ("content-length", "0")],
        );
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let interim = ResponseHeader::build(100, None).unwrap();
        assert!(chain.upstream_response(&interim, &mut state).is_ok());
        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("content-type", "text/html").unwrap();
        resp.insert_header("content-length", LEAK.len()).unwrap();
        assert!(chain.upstream_response(&resp, &mut state).is_ok());
        let mut body = Some(Bytes::from(LEAK));
        assert!(chain.response_body(&mut body, true, &mut state).is_err());
    }

    #[tokio::test]
    async fn a_benign_body_is_held_to_its_end_then_released_whole() {
        let x = exchange(
            "",
            "text/html",
            &["<html>", "<p>Your order shipped.</p>", "</html>"],
        )
        .await;
        assert!(x.header.is_ok() && x.cut.is_none());
        assert_eq!(
            x.released,
            [
                Vec::new(),
                Vec::new(),
                b"<html><p>Your order shipped.</p></html>".to_vec()
            ]
        );
        assert_eq!(x.logged(), None);
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_is_inspected_on_its_first_piece_and_never_held() {
        // A stream (chunked chat, server-sent events as text/plain): each piece goes on at
        // once; the first is inspected.
        let x = exchange_framed(
            "",
            "text/plain",
            &["data: hello\n\n", "data: how can I help?\n\n"],
            false,
        )
        .await;
        assert_eq!(
            x.released,
            [
                b"data: hello\n\n".to_vec(),
                b"data: how can I help?\n\n".to_vec()
            ]
        );
        // A leak in the first piece is cut...
        let x = exchange_framed("", "text/html", &[LEAK, "</html>"], false).await;
        assert!(x.cut.is_some());
        assert!(x.rules().contains(&951230));
        // ...one in a later piece is not seen: the price of never holding a stream.
        let x = exchange_framed("", "text/html", &["<html>", LEAK], false).await;
        assert!(x.cut.is_none());
        assert_eq!(x.released, [b"<html>".to_vec(), LEAK.as_bytes().to_vec()]);
    }

    #[tokio::test]
    async fn a_type_not_listed_streams_through_uninspected() {
        let x = exchange("", "application/octet-stream", &["<html>", LEAK]).await;
        assert!(x.cut.is_none());
        assert_eq!(x.released, [b"<html>".to_vec(), LEAK.as_bytes().to_vec()]);
        assert_eq!(x.logged(), None);
    }

    #[tokio::test]
    async fn only_the_prefix_is_held_and_inspected() {
        // The limit is reached in the first piece: it goes out at once, and what follows
        // streams (and is not inspected).
        let x = exchange(
            "response_body_limit = 8",
            "text/html",
            &["0123456789", LEAK, "tail"],
        )
        .await;
        assert!(x.cut.is_none());
        assert_eq!(
            x.released,
            [
                b"0123456789".to_vec(),
                LEAK.as_bytes().to_vec(),
                b"tail".to_vec()
            ]
        );
        // A leak inside the prefix is caught when the limit is reached, before the end.
        let x = exchange(
            "response_body_limit = 64",
            "text/html",
            &[LEAK, "more", "tail"],
        )
        .await;
        assert!(x.cut.is_some());
        assert!(x.released.is_empty(), "{:?}", x.released);
    }

    #[tokio::test]
    async fn a_phase_3_rule_answers_instead_of_the_response() {
        let path =
            std::env::temp_dir().join(format!("tidegate-waf-response-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            "SecRule RESPONSE_HEADERS:X-Debug-Sql \"@rx .\" \
             \"id:100010,phase:3,deny,status:403,log,msg:'debug header leaked'\"\n",
        )
        .unwrap();
        let x = exchange(
            &format!("rules_file = \"{}\"", path.display()),
            "text/html",
            &["<html></html>"],
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        let reply = x.header.as_ref().expect_err("the header phase refuses");
        assert_eq!(reply.status, 403);
        assert_eq!(
            testing::body(reply)["message"],
            "response blocked by the web application firewall"
        );
        assert_eq!(x.rules(), [100010]);
    }

    #[tokio::test]
    async fn detect_mode_reports_the_leak_and_releases_the_body() {
        let x = exchange("mode = \"detect\"", "text/html", &[LEAK]).await;
        assert!(x.cut.is_none());
        assert_eq!(x.released, [LEAK.as_bytes().to_vec()]);
        assert_eq!(x.logged().unwrap()["action"], "detect");
        assert!(x.rules().contains(&951230));
    }

    #[tokio::test]
    async fn responses_are_not_inspected_when_turned_off() {
        let x = exchange("inspect_responses = false", "text/html", &[LEAK]).await;
        assert!(!x.chain.inspects_response_bodies());
        assert!(x.cut.is_none());
        assert_eq!(x.released, [LEAK.as_bytes().to_vec()]);
        // On one route only: the chain still looks at bodies (other routes), this one not.
        let x = exchange(
            "[routes.r]\ninspect_responses = false",
            "text/html",
            &[LEAK],
        )
        .await;
        assert!(x.chain.inspects_response_bodies());
        assert!(x.cut.is_none());
        assert_eq!(x.logged(), None);
    }

    #[test]
    fn bad_response_settings_are_refused() {
        for (table, says) in [
            ("response_body_limit = 0", "response_body_limit is 1 to"),
            (
                "response_body_limit = 2000000",
                "response_body_limit is 1 to",
            ),
            (
                "response_body_types = [\"text/html text/plain\"]",
                "may not contain ' '",
            ),
            ("response_body_types = [\"html\"]", "is not a type/subtype"),
        ] {
            let error = testing::refusal(&format!("type = \"waf\"\n{table}"));
            assert!(error.contains(says), "{table}: {error}");
        }
    }
}
