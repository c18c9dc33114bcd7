//! The three macros that spell a value's words once, for every value that is
//! stored or sent as text: `words!` (a protocol's open list of words, with
//! `Unknown` for a word this version does not know), `text_enum!` (a closed
//! state stored as text: unknown text is an error) and `text_value!` (a checked
//! text newtype).

/// A list of a WeChat Pay protocol's words (a state, say), for `wxpay` and
/// `wxpay_v3` alike: each known word spelled once, and `Unknown` for one this version does not know, which callers
/// treat as "not final, ask again".
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            Unknown(String),
        }

        impl $name {
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s,
                }
            }
        }
    };
}
pub(crate) use words;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {0:?}")]
pub struct UnknownState(pub String);

/// Text ⇄ enum, the one policy for every state stored as text: `as_str`,
/// `FromStr`, `Display` and the SQLite pair; unknown text is an error, never a
/// default.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in the order declared (tests walk it; not every
            /// enum needs it, hence the allow).
            #[allow(dead_code)]
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::values::order::UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok($ty::$variant),)* other => Err($crate::values::order::UnknownState(other.to_string())) }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl ::rusqlite::types::ToSql for $ty {
            fn to_sql(&self) -> ::rusqlite::Result<::rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
        impl ::rusqlite::types::FromSql for $ty {
            fn column_result(v: ::rusqlite::types::ValueRef<'_>) -> ::rusqlite::types::FromSqlResult<Self> {
                v.as_str()?.parse().map_err(|e: $crate::values::order::UnknownState| ::rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}
pub(crate) use text_enum;

/// `as_str`, `Display` and `FromStr` (through `new`) for a checked text value.
macro_rules! text_value {
    ($err:ty: $($ty:ident),*) => {$(
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::new(s)
            }
        }
    )*};
}
pub(crate) use text_value;
