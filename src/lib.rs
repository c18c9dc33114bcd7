//! scanpay: a self-hosted WeChat Pay scan-to-pay checkout with a built-in
//! gateway simulator.
//!
//! The rooms, in reading order from the top floor down. Imports only point
//! down this list (`docs/ARCHITECTURE.md` draws the doors); `base` is the
//! ground floor anyone may use.

/// Assembly and commands: settings → store → gateway → checkout → jobs →
/// HTTP server; `scanpay check`, `reconcile`, the CLI. Nothing imports it.
pub mod app;
/// The ground floor: errors with causes, the lock policy, outbound HTTP.
pub mod base;
/// The domain: orders, QRs, payments, refunds, reconciliation, accounts.
pub mod checkout;
/// The settings: defaults → TOML → `SCANPAY_*` env → flags, and their checks.
pub mod config;
/// The adapters behind the checkout's `Gateway` port, one per protocol.
pub mod gateway;
/// Background work: the poller and webhook delivery, each `run(stop)`.
pub mod jobs;
/// The simulated gateway and the customer's phone, built on `wxpay`.
pub mod sim;
/// SQLite: the schema, every query, backups. No SQL outside it.
pub mod store;
/// The leaf: money, ids, states, the clock, the books of a day.
pub mod values;
/// HTTP handlers: parse → call the domain → render; every page's words.
pub mod web;
/// The gateways' protocols, pure: WeChat Pay v2 and v3, the trade bill.
pub mod wxpay;
