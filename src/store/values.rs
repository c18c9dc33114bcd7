//! How our value types sit in SQLite: ids as integers, numbers and tokens as
//! text. Values are checked on the way in by their constructors; on the way out
//! a row that no longer parses is an error, never a silent default.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::values::clock::Millis;
use crate::values::order::{OrderId, OrderNo, OrderToken, PaymentId, QrId, RefundId, UserId};
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};

/// Integer newtypes: row ids, and moments in milliseconds.
macro_rules! integer_id {
    ($($ty:ident),*) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }
        impl FromSql for $ty {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                v.as_i64().map($ty)
            }
        }
    )*};
}

integer_id!(OrderId, QrId, UserId, PaymentId, RefundId, Millis);

macro_rules! parsed_text {
    ($($ty:ty => $parse:expr),* $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl FromSql for $ty {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                $parse(s).ok_or_else(|| {
                    FromSqlError::Other(format!("not a valid {}: {s:?}", stringify!($ty)).into())
                })
            }
        }
    )*};
}

parsed_text!(
    OutTradeNo => |s: &str| OutTradeNo::new(s).ok(),
    TransactionId => |s: &str| TransactionId::new(s).ok(),
    OutRefundNo => |s: &str| OutRefundNo::new(s).ok(),
    OrderToken => OrderToken::parse,
    OrderNo => |s: &str| Some(OrderNo::from_stored(s.to_string())),
);
