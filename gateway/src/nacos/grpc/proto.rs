//! The Nacos gRPC messages (`nacos_grpc_service.proto`, no package), written by hand:
//!
//! ```proto
//! message Metadata { string type = 3; string clientIp = 8; map<string,string> headers = 7; }
//! message Payload  { Metadata metadata = 2; google.protobuf.Any body = 3; }
//! service Request         { rpc request (Payload) returns (Payload); }
//! service BiRequestStream { rpc requestBiStream (stream Payload) returns (stream Payload); }
//! ```
//!
//! `metadata.type` is the simple class name of the JSON in `body.value` (UTF-8, `type_url`
//! left empty, as every Nacos client does); headers (the access token) go in
//! `metadata.headers`, never in the JSON.

use std::collections::HashMap;

/// The unary method.
pub const REQUEST: &str = "/Request/request";
/// The bidirectional stream.
pub const BI_STREAM: &str = "/BiRequestStream/requestBiStream";

/// `google.protobuf.Any`, without prost-types.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(string, tag = "3")]
    pub r#type: String,
    #[prost(string, tag = "8")]
    pub client_ip: String,
    #[prost(map = "string, string", tag = "7")]
    pub headers: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<Metadata>,
    #[prost(message, optional, tag = "3")]
    pub body: Option<Any>,
}

/// The codec of both methods: Payload in, Payload out.
pub type Codec = tonic_prost::ProstCodec<Payload, Payload>;

impl Payload {
    /// A message of type `kind` with `json` as its body; `token` goes in the headers.
    pub fn new(
        kind: &str,
        json: &serde_json::Value,
        client_ip: &str,
        token: Option<&str>,
    ) -> Payload {
        let mut headers = HashMap::new();
        if let Some(token) = token {
            headers.insert("accessToken".to_string(), token.to_string());
        }
        Payload {
            metadata: Some(Metadata {
                r#type: kind.to_string(),
                client_ip: client_ip.to_string(),
                headers,
            }),
            body: Some(Any {
                type_url: String::new(),
                value: serde_json::to_vec(json).expect("a JSON value serialises"),
            }),
        }
    }

    /// `metadata.type`: the class name of the body.
    pub fn kind(&self) -> &str {
        self.metadata.as_ref().map_or("", |m| m.r#type.as_str())
    }

    /// The body as JSON (`null` when there is none).
    pub fn json(&self) -> Result<serde_json::Value, String> {
        match &self.body {
            Some(any) if !any.value.is_empty() => serde_json::from_slice(&any.value)
                .map_err(|e| format!("{} body is not JSON: {e}", self.kind())),
            _ => Ok(serde_json::Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn payloads_round_trip() {
        let json = serde_json::json!({"headers": {}, "module": "internal"});
        let payload = Payload::new("ServerCheckRequest", &json, "10.0.0.7", Some("tok"));
        let bytes = payload.encode_to_vec();
        let back = Payload::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, payload);
        assert_eq!(back.kind(), "ServerCheckRequest");
        assert_eq!(back.json().expect("json"), json);
        let metadata = back.metadata.expect("metadata");
        assert_eq!(metadata.client_ip, "10.0.0.7");
        assert_eq!(metadata.headers["accessToken"], "tok");
        assert_eq!(back.body.expect("body").type_url, "");
    }

    #[test]
    fn the_wire_bytes_follow_the_field_numbers() {
        let payload = Payload {
            metadata: Some(Metadata {
                r#type: "A".into(),
                client_ip: "1".into(),
                headers: HashMap::from([("k".to_string(), "v".to_string())]),
            }),
            body: Some(Any {
                type_url: String::new(),
                value: b"{}".to_vec(),
            }),
        };
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x12, 0x0e,                     // Payload.metadata: field 2, length-delimited, 14 bytes
              0x1a, 0x01, b'A',             //   Metadata.type: field 3
              0x3a, 0x06,                   //   Metadata.headers: field 7, one map entry of 6 bytes
                0x0a, 0x01, b'k',           //     key: field 1
                0x12, 0x01, b'v',           //     value: field 2
              0x42, 0x01, b'1',             //   Metadata.clientIp: field 8
            0x1a, 0x04,                     // Payload.body: field 3, 4 bytes
              0x12, 0x02, b'{', b'}',       //   Any.value: field 2 (type_url empty: not written)
        ];
        assert_eq!(payload.encode_to_vec(), want);
        assert_eq!(Payload::decode(want.as_slice()).expect("decodes"), payload);
        // Unknown fields (a newer server) are skipped.
        let mut newer = want.clone();
        newer.extend([0x22, 0x01, b'x']); // field 4, 1 byte
        assert_eq!(Payload::decode(newer.as_slice()).expect("decodes"), payload);
    }

    #[test]
    fn an_empty_body_is_null() {
        let payload = Payload::default();
        assert_eq!(payload.kind(), "");
        assert_eq!(payload.json(), Ok(serde_json::Value::Null));
    }
}
