//! The ground floor: policies every room shares and that know nothing of
//! payments: errors that keep their causes (`cause`), what a poisoned lock
//! means (`lock`), gzip, and outbound HTTP with URLs kept out of errors and logs
//! (`http`). Anything may import it; it imports nothing of ours.

pub mod cause;
pub mod gzip;
pub mod http;
pub mod lock;
