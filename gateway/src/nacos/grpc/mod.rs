//! The Nacos 2.x/3.x gRPC protocol, spoken by a client of Tidegate's own on tonic: the three
//! protobuf messages ([`proto`]), the JSON bodies they carry ([`messages`]), one connection
//! to one server ([`connection`]) and the client that keeps one connection up, with
//! failover, and redoes subscriptions, registration and config listening on every
//! reconnect ([`client`]). The runner only sees [`Handle`] and [`prefetch`].

mod client;
mod connection;
mod messages;
mod proto;

pub use client::{prefetch, Handle, Wanted};
