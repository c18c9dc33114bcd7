//! The leaf: the shop's values, each parsed once and kept as itself past the
//! store (money in `Fen`, ids, states, the clock, the books of a day). It
//! imports nothing of ours but `values/` itself and `base/`; every other room
//! may import it.

pub mod books;
pub mod clock;
pub mod money;
pub mod order;
pub mod role;
pub mod shop_time;
pub mod trade;
pub mod words;
