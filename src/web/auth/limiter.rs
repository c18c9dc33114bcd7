//! The login rate limit: how many password checks anyone gets, and who waits.
//!
//! Three budgets, all counted when a password is about to be checked (a
//! sign-in refused before that is no guess and costs nobody anything):
//! failures per address and name, failures per address over all names, and
//! — against a burst spread over many addresses — checks per **account** for
//! senders the account does not know. A sender is known for a name when that
//! name signed in from its address (IPv4, or IPv6 /64) or from its browser
//! (the device cookie a success leaves) within `KNOWN_FOR`: a stranger's burst
//! can use up the account's budget, never its owner's way in. Known senders
//! also queue for the password check in their own lane, so a full waiting room
//! of strangers does not refuse staff.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::base::lock::LockExt;

/// Failed logins allowed per address and name per window.
pub(super) const MAX_FAILURES: u32 = 10;
pub(super) const FAILURE_WINDOW: Duration = Duration::from_secs(300);
/// Failed sign-ins from one address, all user names together, in the window.
/// Higher than the per-name limit: a shop's staff share one address.
const MAX_ADDRESS_FAILURES: u32 = 3 * MAX_FAILURES;
/// Password checks of one account for senders it does not know, per
/// `FAILURE_WINDOW`, from every address together (the distributed burst).
pub(super) const ACCOUNT_BUDGET: u32 = 2 * MAX_FAILURES;
/// How long a success makes its address and its browser known for that name.
pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Password checks run at once per lane: each argon2 check holds 19 MiB and
/// a core, so a burst of logins must queue rather than exhaust memory.
const STRANGER_HASHES: usize = 2;
const KNOWN_HASHES: usize = 1;
/// Logins allowed to wait for a check in a lane; past it a login is refused
/// at once (so a burst never makes a staff member wait seconds behind it).
const MAX_WAITING: usize = 8;
/// Sign-ins from one address checked at the same time; more are refused at once.
const MAX_IN_FLIGHT_PER_ADDRESS: u32 = 2;
/// Strangers' sign-ins to one account waiting or checked at the same time:
/// a burst against one name holds this much of the strangers' lane, so a
/// cashier on a new address still finds room in it.
const MAX_IN_FLIGHT_PER_ACCOUNT: u32 = STRANGER_HASHES as u32;
/// Past this many entries a table is pruned of what has expired; a table of
/// devices still full then takes no new device (its owners still have their address).
const MAX_TRACKED: usize = 10_000;

/// Why a sign-in was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyFailures,
    Busy,
    /// The account's budget for strangers is spent (a distributed burst).
    AccountBusy,
}

pub struct LoginLimiter {
    books: Mutex<Books>,
    strangers: Lane,
    known: Lane,
}

/// One queue for the password check.
struct Lane {
    hashing: tokio::sync::Semaphore,
    waiting: AtomicUsize,
}

impl Lane {
    fn new(permits: usize) -> Self {
        Lane {
            hashing: tokio::sync::Semaphore::new(permits),
            waiting: AtomicUsize::new(0),
        }
    }
}

#[derive(Default)]
struct Books {
    by_name: HashMap<(IpAddr, String), (u32, Instant)>,
    by_address: HashMap<IpAddr, (u32, Instant)>,
    by_account: HashMap<String, (u32, Instant)>,
    in_flight: HashMap<IpAddr, u32>,
    /// Strangers' sign-ins per account name, waiting or being checked.
    account_in_flight: HashMap<String, u32>,
    /// (address bucket, name) → last success from there.
    known_addresses: HashMap<(IpAddr, String), Instant>,
    /// SHA-256 of a device cookie → (name, when issued); the cookie itself is never kept.
    devices: HashMap<[u8; 32], (String, Instant)>,
}

impl Books {
    fn prune(&mut self) {
        let live = |since: &Instant| since.elapsed() < FAILURE_WINDOW;
        if self.by_name.len() > MAX_TRACKED {
            self.by_name.retain(|_, (_, s)| live(s));
        }
        if self.by_address.len() > MAX_TRACKED {
            self.by_address.retain(|_, (_, s)| live(s));
        }
        if self.by_account.len() > MAX_TRACKED {
            self.by_account.retain(|_, (_, s)| live(s));
        }
        if self.known_addresses.len() > MAX_TRACKED {
            self.known_addresses.retain(|_, s| s.elapsed() < KNOWN_FOR);
        }
        if self.devices.len() > MAX_TRACKED {
            self.devices.retain(|_, (_, s)| s.elapsed() < KNOWN_FOR);
        }
    }

    fn knows(&self, ip: IpAddr, name: &str, device: Option<&str>) -> bool {
        let recent = |at: &Instant| at.elapsed() < KNOWN_FOR;
        self.known_addresses
            .get(&(ip, name.to_string()))
            .is_some_and(recent)
            || device.is_some_and(|d| {
                self.devices
                    .get(&device_key(d))
                    .is_some_and(|(n, at)| n == name && recent(at))
            })
    }
}

fn device_key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

/// Whether `entry`'s window is live and full.
fn full(entry: Option<&(u32, Instant)>, max: u32) -> bool {
    entry.is_some_and(|(n, since)| *n >= max && since.elapsed() < FAILURE_WINDOW)
}

/// Counts one attempt in a window, restarting an expired one.
fn count(entry: &mut (u32, Instant)) {
    if entry.1.elapsed() >= FAILURE_WINDOW {
        *entry = (0, Instant::now());
    }
    entry.0 += 1;
}

/// One sign-in let in; while it lives its address has one more check in flight.
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    ip: IpAddr,
    name: String,
    known: bool,
}

impl Attempt<'_> {
    /// The password is about to be checked: counted now, or refused when the
    /// account's budget for strangers was spent while this one waited.
    pub fn charge(&mut self) -> Result<(), Refusal> {
        let mut b = self.limiter.books.lock_or_recover();
        let now = Instant::now();
        if !self.known {
            if full(b.by_account.get(&self.name), ACCOUNT_BUDGET) {
                return Err(Refusal::AccountBusy);
            }
            count(b.by_account.entry(self.name.clone()).or_insert((0, now)));
        }
        count(b.by_address.entry(self.ip).or_insert((0, now)));
        count(
            b.by_name
                .entry((self.ip, self.name.clone()))
                .or_insert((0, now)),
        );
        Ok(())
    }

    /// The password was right: it is not a failure, that name's failures from
    /// that address are forgiven (nothing else is), and the address and a new
    /// device cookie (returned, to be set) are known for that name from now on.
    pub fn succeeded(&self) -> String {
        let device = hex::encode(rand::random::<[u8; 16]>());
        let mut b = self.limiter.books.lock_or_recover();
        b.by_name.remove(&(self.ip, self.name.clone()));
        if let Some(e) = b.by_address.get_mut(&self.ip) {
            e.0 = e.0.saturating_sub(1);
        }
        if !self.known
            && let Some(e) = b.by_account.get_mut(&self.name)
        {
            e.0 = e.0.saturating_sub(1);
        }
        b.known_addresses
            .insert((self.ip, self.name.clone()), Instant::now());
        if b.devices.len() < MAX_TRACKED {
            b.devices
                .insert(device_key(&device), (self.name.clone(), Instant::now()));
        }
        device
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut b = self.limiter.books.lock_or_recover();
        release(&mut b.in_flight, &self.ip);
        if !self.known {
            release(&mut b.account_in_flight, &self.name);
        }
    }
}

/// One fewer in flight under `key`, forgetting it at zero.
fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            books: Mutex::default(),
            strangers: Lane::new(STRANGER_HASHES),
            known: Lane::new(KNOWN_HASHES),
        }
    }
}

impl LoginLimiter {
    /// Lets a sign-in of `name` from `ip` (with the device cookie, if any) go
    /// on to wait for its check, or refuses it. Nothing is counted yet.
    pub fn begin(
        &self,
        ip: IpAddr,
        name: &str,
        device: Option<&str>,
    ) -> Result<Attempt<'_>, Refusal> {
        let mut b = self.books.lock_or_recover();
        b.prune();
        let ip = bucket(ip);
        let name = name.to_lowercase();
        if full(b.by_name.get(&(ip, name.clone())), MAX_FAILURES)
            || full(b.by_address.get(&ip), MAX_ADDRESS_FAILURES)
        {
            return Err(Refusal::TooManyFailures);
        }
        let known = b.knows(ip, &name, device);
        if !known && full(b.by_account.get(&name), ACCOUNT_BUDGET) {
            return Err(Refusal::AccountBusy);
        }
        if b.in_flight.get(&ip).copied().unwrap_or(0) >= MAX_IN_FLIGHT_PER_ADDRESS
            || (!known
                && b.account_in_flight.get(&name).copied().unwrap_or(0)
                    >= MAX_IN_FLIGHT_PER_ACCOUNT)
        {
            return Err(Refusal::Busy);
        }
        *b.in_flight.entry(ip).or_insert(0) += 1;
        if !known {
            *b.account_in_flight.entry(name.clone()).or_insert(0) += 1;
        }
        Ok(Attempt {
            limiter: self,
            ip,
            name,
            known,
        })
    }

    /// Waits for a password-check slot in the attempt's lane, or refuses at
    /// once when too many wait there.
    pub async fn slot(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, Refusal> {
        let lane = if attempt.known {
            &self.known
        } else {
            &self.strangers
        };
        if lane.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            lane.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::Busy);
        }
        let permit = lane.hashing.acquire().await;
        lane.waiting.fetch_sub(1, Ordering::SeqCst);
        // The semaphore is never closed.
        permit.map_err(|_| Refusal::Busy)
    }
}

/// The rate-limit bucket of a client: its IPv4 address, or its IPv6 /64 (one
/// subscriber gets a whole /64, so single addresses would be free for the taking).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[4..].fill(0);
            IpAddr::from(s)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sign-in let in and charged: what the limit counts as one guess.
    fn guess<'a>(l: &'a LoginLimiter, ip: IpAddr, name: &str) -> Result<Attempt<'a>, Refusal> {
        let mut a = l.begin(ip, name, None)?;
        a.charge()?;
        Ok(a)
    }

    #[test]
    fn limiter_blocks_after_repeated_failures() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES {
            assert!(guess(&l, ip, "admin").is_ok());
        }
        let refused = |name| l.begin(ip, name, None).err();
        assert_eq!(
            refused("admin"),
            Some(Refusal::TooManyFailures),
            "counted before any check"
        );
        assert_eq!(
            refused("ADMIN"),
            Some(Refusal::TooManyFailures),
            "names fold case"
        );
        assert!(guess(&l, IpAddr::from([10, 0, 0, 2]), "admin").is_ok());
        // The cashier signs in from the same address: the admin guesses stay counted.
        guess(&l, ip, "cashier").unwrap().succeeded();
        assert_eq!(refused("admin"), Some(Refusal::TooManyFailures));
    }

    #[test]
    fn a_success_forgives_only_its_own_name() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 3]);
        for _ in 0..3 {
            drop(guess(&l, ip, "admin").unwrap());
            drop(guess(&l, ip, "cashier").unwrap());
        }
        guess(&l, ip, "admin").unwrap().succeeded();
        let f = l.books.lock_or_recover();
        assert!(!f.by_name.contains_key(&(ip, "admin".into())));
        assert_eq!(f.by_name[&(ip, "cashier".into())].0, 3);
        assert_eq!(
            f.by_address[&ip].0, 6,
            "the success itself is not a failure"
        );
    }

    #[test]
    fn one_address_has_a_ceiling_over_all_names() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 9]);
        for i in 0..MAX_ADDRESS_FAILURES {
            assert!(guess(&l, ip, &format!("user{}", i % 5)).is_ok());
        }
        assert_eq!(
            l.begin(ip, "someone-new", None).err(),
            Some(Refusal::TooManyFailures)
        );
    }

    #[test]
    fn one_address_has_only_two_checks_in_flight() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 7]);
        let a = l.begin(ip, "a", None).unwrap();
        let _b = l.begin(ip, "b", None).unwrap();
        assert_eq!(
            l.begin(ip, "c", None).err(),
            Some(Refusal::Busy),
            "refused, not queued"
        );
        assert!(
            l.begin(IpAddr::from([10, 0, 0, 8]), "c", None).is_ok(),
            "another address is not"
        );
        drop(a);
        assert!(
            l.begin(ip, "c", None).is_ok(),
            "room again once one is checked"
        );
    }

    #[tokio::test]
    async fn past_the_waiting_room_a_login_is_refused_at_once() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 0, 20]);
        let attempt = l.begin(ip, "a", None).unwrap();
        let mut held = Vec::new();
        for _ in 0..STRANGER_HASHES {
            held.push(l.slot(&attempt).await.unwrap());
        }
        l.strangers.waiting.store(MAX_WAITING, Ordering::SeqCst);
        assert_eq!(l.slot(&attempt).await.err(), Some(Refusal::Busy));
        drop(held);
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let l = LoginLimiter::default();
        for i in 0..MAX_FAILURES {
            let ip = IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, i as u16]);
            assert!(guess(&l, ip, "admin").is_ok());
        }
        let same_64 = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(
            l.begin(same_64, "admin", None).err(),
            Some(Refusal::TooManyFailures)
        );
        assert!(guess(&l, "2001:db8:1:3::1".parse().unwrap(), "admin").is_ok());
    }

    #[test]
    fn strangers_to_one_account_hold_only_their_share_of_the_queue() {
        let l = LoginLimiter::default();
        let held: Vec<_> = (0..MAX_IN_FLIGHT_PER_ACCOUNT)
            .map(|i| {
                l.begin(IpAddr::from([10, 4, 0, i as u8]), "admin", None)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            l.begin(IpAddr::from([10, 4, 1, 1]), "admin", None).err(),
            Some(Refusal::Busy),
            "a third stranger to admin waits outside"
        );
        assert!(
            l.begin(IpAddr::from([10, 4, 1, 2]), "cashier", None)
                .is_ok()
        );
        drop(held);
        assert!(l.begin(IpAddr::from([10, 4, 1, 1]), "admin", None).is_ok());
    }

    #[test]
    fn a_refusal_before_the_check_is_not_counted_as_a_failure() {
        let l = LoginLimiter::default();
        let ip = IpAddr::from([10, 0, 1, 1]);
        let _a = l.begin(ip, "admin", None).unwrap();
        let _b = l.begin(ip, "admin", None).unwrap();
        // Far more refusals (busy) than the failure limit…
        for _ in 0..3 * MAX_ADDRESS_FAILURES {
            assert_eq!(l.begin(ip, "admin", None).err(), Some(Refusal::Busy));
        }
        drop((_a, _b));
        // …and the address may still try: none of them was a guess.
        let b = l.books.lock_or_recover();
        assert!(!b.by_address.contains_key(&ip), "nothing counted");
        assert!(!b.by_name.contains_key(&(ip, "admin".into())));
        drop(b);
        assert!(guess(&l, ip, "admin").is_ok());
    }

    #[test]
    fn a_burst_over_many_addresses_spends_the_accounts_budget_not_its_owners_way_in() {
        let l = LoginLimiter::default();
        let office = IpAddr::from([10, 9, 9, 9]);
        // The admin signed in from the office once; the cookie is that browser's.
        let device = guess(&l, office, "admin").unwrap().succeeded();
        // Strangers on a thousand addresses, one guess each.
        let mut checked = 0;
        for i in 0..1000u32 {
            let ip = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
            match guess(&l, ip, "admin") {
                Ok(_) => checked += 1,
                Err(why) => assert_eq!(why, Refusal::AccountBusy),
            }
        }
        assert_eq!(checked, ACCOUNT_BUDGET, "the account's budget, no more");
        // The owner still gets in from the office, and from the browser
        // that signed in before wherever it is now.
        assert!(guess(&l, office, "admin").is_ok(), "the known address");
        let roaming = IpAddr::from([10, 2, 0, 1]);
        assert!(
            l.begin(roaming, "admin", Some(&device)).is_ok(),
            "the device"
        );
        assert_eq!(
            l.begin(roaming, "admin", Some("a-guessed-cookie")).err(),
            Some(Refusal::AccountBusy),
            "a cookie the limiter never issued is nobody's"
        );
        assert_eq!(
            l.begin(roaming, "cashier", Some(&device)).map(|_| ()),
            Ok(()),
            "another account has its own budget"
        );
        let cashiers = l.begin(IpAddr::from([10, 3, 0, 1]), "cashier", Some(&device));
        assert!(
            cashiers.is_ok_and(|a| !a.known),
            "a device is known for its own name only"
        );
    }
}
