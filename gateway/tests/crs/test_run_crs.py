"""Unit tests of the CRS runner's request building, log adapters and verdicts (no network).

    target/crs/venv/bin/python -m unittest discover -s gateway/tests/crs -p 'test_*.py'
"""

import base64
import os
import tempfile
import unittest

import run_crs as rc


def split(payload):
    head, _, body = payload.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], lines[1:], body


class BuildRequest(unittest.TestCase):
    def test_form_data_gets_type_length_and_is_reencoded(self):
        payload, added = rc.build_request(
            {"method": "POST", "version": "HTTP/1.0", "headers": {"Host": "localhost"},
             "data": "var=1234 OR 1=1"}, "crs-1")
        first, headers, body = split(payload)
        self.assertEqual(first, "POST / HTTP/1.0")
        self.assertEqual(body, b"var=1234+OR+1%3D1")
        self.assertEqual(headers, ["Host: localhost",
                                   "Content-Type: application/x-www-form-urlencoded",
                                   "Content-Length: 17", "X-Request-Id: crs-1"])
        self.assertTrue(added)

    def test_escaped_data_is_left_alone_and_blank_pairs_survive(self):
        payload, _ = rc.build_request({"headers": {}, "data": "a=%27x"}, None)
        self.assertEqual(split(payload)[2], b"a=%27x")
        payload, _ = rc.build_request({"headers": {}, "data": "justtext"}, None)
        self.assertEqual(split(payload)[2], b"justtext")

    def test_other_content_types_are_not_reencoded(self):
        payload, _ = rc.build_request(
            {"headers": {"Content-Type": "application/json"}, "data": '{"a": "b c"}'}, None)
        _, headers, body = split(payload)
        self.assertEqual(body, b'{"a": "b c"}')
        self.assertIn("Content-Length: 12", headers)

    def test_list_data_is_joined_with_crlf(self):
        payload, _ = rc.build_request(
            {"headers": {"Content-Type": "multipart/form-data; boundary=x"},
             "data": ["--x", "a", "--x--"]}, None)
        self.assertEqual(split(payload)[2], b"--x\r\na\r\n--x--")

    def test_stop_magic_adds_nothing_but_the_correlation_header(self):
        payload, added = rc.build_request(
            {"method": "POST", "headers": {"Host": "h", "Content-Length": 11},
             "data": "a=b", "stop_magic": True}, "crs-2")
        _, headers, body = split(payload)
        self.assertEqual(headers, ["Host: h", "Content-Length: 11", "X-Request-Id: crs-2"])
        self.assertEqual(body, b"a=b")
        self.assertTrue(added)

    def test_raw_and_encoded_requests_are_sent_verbatim(self):
        raw = "GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n"
        payload, added = rc.build_request({"raw_request": raw}, "crs-3")
        self.assertEqual(payload, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        self.assertFalse(added)
        enc = base64.b64encode(b"POST / HTTP/1.1\nHost: y\n\n").decode()
        payload, added = rc.build_request({"encoded_request": enc, "raw_request": raw}, "crs-4")
        self.assertEqual(payload, b"POST / HTTP/1.1\nHost: y\n\n")
        self.assertFalse(added)

    def test_weird_request_lines_stay_weird(self):
        payload, _ = rc.build_request({"method": "\tGET", "uri": "/a b", "version": "",
                                       "headers": {}}, None)
        self.assertTrue(payload.startswith(b"\tGET /a b \r\n"))


class Responses(unittest.TestCase):
    def test_complete_by_length_chunked_and_head(self):
        self.assertTrue(rc._response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "GET"))
        self.assertFalse(rc._response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", "GET"))
        self.assertTrue(rc._response_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", "GET"))
        self.assertTrue(rc._response_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", "HEAD"))

    def test_parse(self):
        r = rc.Response()
        r.raw = b"HTTP/1.1 403 Forbidden\r\nX-Request-Id: crs-9\r\n\r\nno"
        rc.parse_response(r)
        self.assertEqual((r.status, r.headers["x-request-id"], r.error), (403, "crs-9", None))
        r = rc.Response()
        r.raw = b"garbage\r\n\r\n"
        rc.parse_response(r)
        self.assertIsNotNone(r.error)


class Adapters(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name, text=""):
        p = os.path.join(self.dir.name, name)
        with open(p, "w") as fh:
            fh.write(text)
        return p

    def test_tidegate_waf_object(self):
        log = self.path("access.log")
        ad = rc.Tidegate(log)
        with open(log, "a") as fh:
            fh.write('{"request_id":"crs-1","status":403,"waf":{"action":"block","score":10,'
                     '"rules":[942100,949110]}}\n{"request_id":"crs-2","status":200}\n'
                     '{"request_id":"crs-3","status":200,"waf":{"action":"pass","score":0,"rules":[]}}\n')
        ad.poll()
        ev = ad.evidence("crs-1")
        self.assertTrue(ev.seen)
        self.assertEqual(ev.rules, {942100, 949110})
        self.assertEqual((ev.action, ev.score), ("block", 10))
        st = rc.Stage(None, 0, {"output": {"log_contains": 'id "942100"'}})
        resp = rc.Response()
        resp.status = 403
        self.assertEqual(rc.judge(st, resp, ev), [])
        self.assertTrue(ad.evidence("crs-2").seen)
        self.assertEqual(ad.evidence("crs-2").lines, [])
        self.assertEqual(ad.evidence("crs-3").rules, set())
        self.assertFalse(ad.evidence("crs-404").seen)

    def test_nginx_error_audit_and_access_logs(self):
        err, acc, aud = self.path("error.log"), self.path("access.log"), self.path("audit.log")
        ad = rc.NginxModsec(err, acc, aud)
        with open(err, "a") as fh:
            fh.write('2026/01/01 [info] 1#1: *4 ModSecurity: Warning. x [id "942100"] [msg "m"] '
                     '[unique_id "crs-5"] [ref ""], client: 127.0.0.1\n'
                     '2026/01/01 [info] 1#1: *4 client closed connection\n')
        with open(aud, "a") as fh:
            fh.write('{"transaction":{"unique_id":"crs-5","messages":[{"message":"m",'
                     '"details":{"ruleId":"920350"}}]}}\n')
        with open(acc, "a") as fh:
            fh.write('crs_id=crs-5 status=403 up=- req="GET / HTTP/1.1"\n')
        ad.poll()
        ev = ad.evidence("crs-5")
        self.assertTrue(ev.seen)
        self.assertEqual(ev.rules, {942100, 920350})
        self.assertTrue(any('id "920350"' in ln for ln in ev.lines))
        self.assertTrue(ad.complete("crs-5"))
        with open(acc, "a") as fh:
            fh.write('crs_id=crs-6 status=400 up=- req="GET x HTTP/1.1"\n')
        ad.poll()
        self.assertTrue(ad.evidence("crs-6").seen)
        self.assertFalse(ad.complete("crs-6"))

    def test_positional_fallback_skips_markers(self):
        acc = self.path("access.log")
        ad = rc.Tidegate(acc)
        ad.mark()
        with open(acc, "a") as fh:
            fh.write('{"request_id":"gen-1","waf":{"rules":[920100]}}\n'
                     '{"request_id":"crs-mark-7","waf":{"rules":[920300]}}\n')
        ad.poll()
        ev = ad.evidence(None, exclude={"crs-mark-7"})
        self.assertTrue(ev.seen)
        self.assertEqual(ev.rules, {920100})

    def test_upstream_log(self):
        up = self.path("up.log")
        u = rc.UpstreamLog(up)
        u.mark()
        with open(up, "a") as fh:
            fh.write('{"id": "crs-1", "line": "GET / HTTP/1.0"}\n')
        self.assertTrue(u.reached("crs-1"))
        self.assertFalse(u.reached("crs-2"))
        self.assertTrue(u.reached(None))


class Verdicts(unittest.TestCase):
    def test_status_error_and_no_log(self):
        ev = rc.Evidence()
        ev.lines = ['[id "920100"]']
        resp = rc.Response()
        resp.status = 400
        st = rc.Stage(None, 0, {"output": {"status": [400, 403]}})
        self.assertEqual(rc.judge(st, resp, ev), [])
        st = rc.Stage(None, 0, {"output": {"no_log_contains": 'id "920100"'}})
        self.assertEqual(len(rc.judge(st, resp, ev)), 1)
        st = rc.Stage(None, 0, {"output": {"expect_error": True}})
        self.assertEqual(len(rc.judge(st, resp, ev)), 1)
        resp.error, resp.status = "no response", None
        self.assertEqual(rc.judge(st, resp, ev), [])

    def test_paranoia_levels_from_sections(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "REQUEST-942-X.conf"), "w") as fh:
                fh.write('SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt 1" "id:942011,phase:1,pass"\n'
                         'SecRule ARGS "@rx a" "id:942100,phase:2,block"\n'
                         '# SecRule ARGS "@rx a" "id:942999"\n'
                         'SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt 2" "id:942013,phase:1,pass"\n'
                         'SecRule ARGS "@rx b" \\\n    "id:942200,\\\n    phase:2"\n')
            levels = rc.paranoia_levels(d)
        self.assertEqual(levels[942100], 1)
        self.assertEqual(levels[942200], 2)
        self.assertNotIn(942999, levels)


if __name__ == "__main__":
    unittest.main()
