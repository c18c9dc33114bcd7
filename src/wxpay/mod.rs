//! WeChat Pay's protocols, pure: API v2 (`v2`: MD5/HMAC-SHA256 signed XML)
//! and API v3 (`v3`: RSA-signed JSON, AES-GCM resources), and the trade bill
//! both versions share (`bill`). No web framework, no database, no domain:
//! the adapters in `gateway/` are the only importers besides the simulator.

pub mod bill;
pub mod v2;
pub mod v3;
