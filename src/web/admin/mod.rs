//! The admin area: `GET /admin` (paid orders, totals, a revenue chart),
//! `GET /admin/orders.csv` (the same selection, streamed) and
//! `GET /admin/orders/{order_no}` (one order's whole story).
//!
//! Read model (a decision): these pages only read, so they query
//! `store::reports`, a read-only module of report queries, instead of going
//! through `checkout`, which owns every change to an order. Nothing here
//! writes. Each handler reads extract → parse (`selection`) → one report
//! call → render.

mod chart;
mod csv;
mod order;
mod orders;
mod selection;

pub use csv::orders_csv;
pub use order::order;
pub use orders::orders;
