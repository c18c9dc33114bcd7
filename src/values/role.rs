//! What a signed-in user may do: take orders, or also see the admin area.

use crate::values::words::text_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Cashier,
}

// Stored as text; a role this build does not know is an error, never a guess.
text_enum!(Role { Admin => "admin", Cashier => "cashier" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_as_text_and_unknown_text_is_refused() {
        for r in [Role::Admin, Role::Cashier] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }
}
