//! Users and roles: argon2 password hashes, demo users, the checks login
//! needs, and login sessions (the web layer reaches sessions only through here).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use crate::store::users::SessionUser;
use crate::store::users::{self, UserRow};
use crate::store::{Store, StoreError};
use crate::values::clock::Millis;
use crate::values::role::Role;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("user names are 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName,
    #[error("the password must be at least {0} characters")]
    ShortPassword(usize),
    #[error("the password must not be only spaces")]
    BlankPassword,
    #[error(
        "{0:?} is the last admin who can sign in; make another user an admin first \
         (scanpay user role NAME admin)"
    )]
    LastAdmin(String),
    #[error("the password could not be hashed")]
    Hash,
    #[error("the password check could not run")]
    Join(#[from] tokio::task::JoinError),
}

pub const MIN_PASSWORD: usize = 8;

/// A hash that never matches, checked for unknown users so timing tells nothing.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2NhbnBheWR1bW15c2FsdA$2tB6ZRW0Gs8R3v0wvJ8Yh0R0d7p8mXgk0aC0a8XK7Ys";

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| AccountError::Hash)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// How long a login lasts.
pub const SESSION_LIFE: Duration = Duration::from_secs(12 * 3600);

/// A session just opened: the secret for the cookie (only its hash is
/// stored, so a copy of the database opens no session) and its CSRF token.
#[derive(Debug)]
pub struct OpenedSession {
    pub id: String,
    pub csrf_token: String,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn hash_session_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Staff sign-in for the web: logins and sessions over the store, so the web
/// layer holds no store of its own.
#[derive(Clone)]
/// What a sign-in came to. An unknown name may be a password typed into the
/// wrong box: it is never logged as such (see `web::auth::login`).
pub enum SignIn {
    Granted(UserRow),
    WrongPassword,
    UnknownUser,
    /// The right password of a disabled user (`scanpay user disable`).
    Disabled,
}

impl SignIn {
    /// The user, when the password was right.
    pub fn user(self) -> Option<UserRow> {
        match self {
            SignIn::Granted(user) => Some(user),
            _ => None,
        }
    }
}

pub struct Accounts {
    store: Store,
}

impl Accounts {
    pub fn new(store: Store) -> Self {
        Accounts { store }
    }

    /// Checks a login on the blocking pool (argon2 is deliberately slow).
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<SignIn, AccountError> {
        let name = username.to_string();
        let user = self
            .store
            .read(move |c| users::user_by_name(c, &name))
            .await?;
        let password = password.to_string();
        // The check keeps the request's span, so its log lines say whose login it was.
        let span = tracing::Span::current();
        let result = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let hash = user
                    .as_ref()
                    .map(|u| u.password_hash.as_str())
                    .unwrap_or(DUMMY_HASH);
                let ok = verify_password(&password, hash);
                match user {
                    Some(user) if ok && user.disabled => SignIn::Disabled,
                    Some(user) if ok => SignIn::Granted(user),
                    Some(_) => SignIn::WrongPassword,
                    None => SignIn::UnknownUser,
                }
            })
        })
        .await?;
        Ok(result)
    }

    /// Opens a session of `SESSION_LIFE` for a user who has just authenticated
    /// (expired sessions are swept on the way).
    pub async fn open_session(&self, user_id: i64) -> Result<OpenedSession, AccountError> {
        let session = OpenedSession {
            id: random_hex(32),
            csrf_token: random_hex(32),
        };
        let id_hash = hash_session_id(&session.id);
        let csrf = session.csrf_token.clone();
        let now = Millis::wall().get();
        let expires =
            now.saturating_add(i64::try_from(SESSION_LIFE.as_millis()).unwrap_or(i64::MAX));
        self.store
            .write(move |tx| users::insert_session(tx, &id_hash, user_id, &csrf, now, expires))
            .await?;
        Ok(session)
    }

    /// The user of an unexpired session, from the cookie's secret.
    pub async fn session(&self, session_id: &str) -> Result<Option<SessionUser>, AccountError> {
        let id_hash = hash_session_id(session_id);
        let now = Millis::wall().get();
        Ok(self
            .store
            .read(move |c| users::session_user(c, &id_hash, now))
            .await?)
    }

    /// Ends a session (signing out); an unknown one is already ended.
    pub async fn close_session(&self, session_id: &str) -> Result<(), AccountError> {
        let id_hash = hash_session_id(session_id);
        Ok(self
            .store
            .write(move |tx| users::delete_session(tx, &id_hash))
            .await?)
    }
}

/// A new password: long enough, and not only white space (a password of
/// spaces is one a shoulder-surfer or a stuck key guesses at once).
fn check_password(password: &str, min_len: usize) -> Result<(), AccountError> {
    if password.trim().is_empty() {
        return Err(AccountError::BlankPassword);
    }
    if password.chars().count() < min_len {
        return Err(AccountError::ShortPassword(min_len));
    }
    Ok(())
}

/// Adds a user (CLI and demo setup). `min_len` is relaxed only for the demo users.
pub fn add_user(
    store: &Store,
    name: &str,
    password: &str,
    role: Role,
    min_len: usize,
) -> Result<(), AccountError> {
    if !valid_name(name) {
        return Err(AccountError::BadName);
    }
    check_password(password, min_len)?;
    let hash = hash_password(password)?;
    let now = Millis::wall().get();
    let inserted = store.write_blocking(|tx| users::insert_user(tx, name, &hash, role, now))?;
    if inserted {
        Ok(())
    } else {
        Err(AccountError::Exists(name.to_string()))
    }
}

pub fn set_password(store: &Store, name: &str, password: &str) -> Result<(), AccountError> {
    check_password(password, MIN_PASSWORD)?;
    let hash = hash_password(password)?;
    if store.write_blocking(|tx| users::set_password(tx, name, &hash))? {
        Ok(())
    } else {
        Err(AccountError::NoSuchUser(name.to_string()))
    }
}

/// Simulator mode's demo users, created when the database has no user at all.
pub fn ensure_demo_users(store: &Store) -> Result<bool, AccountError> {
    if store.read_blocking(users::count_users)? > 0 {
        return Ok(false);
    }
    for (name, role) in [("admin", Role::Admin), ("cashier", Role::Cashier)] {
        match add_user(store, name, name, role, 1) {
            Ok(()) | Err(AccountError::Exists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// `scanpay user disable|enable NAME`: a disabled user's sessions end at once.
pub fn set_disabled(store: &Store, name: &str, disabled: bool) -> Result<(), AccountError> {
    change_user(store, name, disabled, |tx| {
        users::set_disabled(tx, name, disabled)
    })
}

/// `scanpay user role NAME admin|cashier`.
pub fn set_role(store: &Store, name: &str, role: Role) -> Result<(), AccountError> {
    change_user(store, name, role != Role::Admin, |tx| {
        users::set_role(tx, name, role)
    })
}

/// One change to a user, refused when it `takes_admin` away from the last admin
/// who can sign in (checked in the same transaction as the change).
fn change_user(
    store: &Store,
    name: &str,
    takes_admin: bool,
    change: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<bool, StoreError>,
) -> Result<(), AccountError> {
    let done = store.write_blocking(|tx| {
        if takes_admin && users::is_last_admin(tx, name)? {
            return Ok(Err(AccountError::LastAdmin(name.to_string())));
        }
        Ok(Ok(change(tx)?))
    })??;
    if done {
        Ok(())
    } else {
        Err(AccountError::NoSuchUser(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong horse", &a));
        assert!(!verify_password("anything", DUMMY_HASH));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn users_in_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(ensure_demo_users(&store).unwrap());
        assert!(!ensure_demo_users(&store).unwrap(), "only once");
        assert!(matches!(
            add_user(&store, "admin", "whatever1", Role::Admin, 8),
            Err(AccountError::Exists(_))
        ));
        assert!(matches!(
            add_user(&store, "bad name", "whatever1", Role::Admin, 8),
            Err(AccountError::BadName)
        ));
        assert!(matches!(
            add_user(&store, "li", "short", Role::Cashier, 8),
            Err(AccountError::ShortPassword(8))
        ));
        for blank in ["        ", " \t  \u{3000}      "] {
            assert!(matches!(
                add_user(&store, "li", blank, Role::Cashier, 8),
                Err(AccountError::BlankPassword)
            ));
        }
        add_user(&store, "li", "longenough", Role::Cashier, 8).unwrap();
        set_password(&store, "li", "evenlonger").unwrap();
        assert!(matches!(
            set_password(&store, "li", "          "),
            Err(AccountError::BlankPassword)
        ));
        let user = store
            .read_blocking(|c| users::user_by_name(c, "li"))
            .unwrap()
            .unwrap();
        assert!(verify_password("evenlonger", &user.password_hash));
        assert!(matches!(
            set_password(&store, "nobody", "whatever1"),
            Err(AccountError::NoSuchUser(_))
        ));
    }

    #[test]
    fn the_last_admin_who_can_sign_in_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add_user(&store, "wang", "longenough", Role::Admin, 8).unwrap();
        add_user(&store, "li", "longenough", Role::Cashier, 8).unwrap();
        let last = |r: Result<(), AccountError>, who: &str| matches!(r, Err(AccountError::LastAdmin(ref n)) if n == who);
        assert!(last(set_disabled(&store, "wang", true), "wang"));
        assert!(last(set_role(&store, "wang", Role::Cashier), "wang"));
        // A cashier can change freely; an admin too once there is another.
        set_disabled(&store, "li", true).unwrap();
        set_disabled(&store, "li", false).unwrap();
        set_role(&store, "li", Role::Admin).unwrap();
        set_role(&store, "wang", Role::Cashier).unwrap();
        assert!(last(set_disabled(&store, "li", true), "li"));
        // A disabled admin does not count as one who can sign in.
        set_role(&store, "wang", Role::Admin).unwrap();
        set_disabled(&store, "wang", true).unwrap();
        assert!(matches!(
            set_role(&store, "li", Role::Cashier),
            Err(AccountError::LastAdmin(_))
        ));
        set_role(&store, "wang", Role::Admin).unwrap();
        assert!(matches!(
            set_disabled(&store, "nobody", true),
            Err(AccountError::NoSuchUser(_))
        ));
    }

    #[tokio::test]
    async fn sessions_open_are_found_by_their_secret_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        add_user(&store, "li", "longenough", Role::Admin, 8).unwrap();
        let accounts = Accounts::new(store);
        let user = accounts
            .authenticate("li", "longenough")
            .await
            .unwrap()
            .user()
            .unwrap();
        assert!(
            accounts
                .authenticate("li", "wrong horse")
                .await
                .unwrap()
                .user()
                .is_none()
        );
        let opened = accounts.open_session(user.id).await.unwrap();
        let s = accounts.session(&opened.id).await.unwrap().unwrap();
        assert_eq!((s.username.as_str(), s.role), ("li", Role::Admin));
        assert_eq!(s.csrf_token, opened.csrf_token);
        // The stored key is the secret's hash, not the secret.
        let hash = hash_session_id(&opened.id);
        assert!(accounts.session(&hash).await.unwrap().is_none());
        accounts.close_session(&opened.id).await.unwrap();
        assert!(accounts.session(&opened.id).await.unwrap().is_none());
        accounts.close_session(&opened.id).await.unwrap();
    }
}
