//! The counter (SPEC §10): the cashier's day, and the customer display paired
//! to one cashier, which follows that cashier's newest order.

use crate::store::{counter, qrs};
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::hub::Subscription;
use super::{Checkout, CheckoutError};
use crate::store::displays;
use crate::store::orders::OrderRow;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderNo, OrderState, UserId};
use crate::values::shop_time::Range;

use super::OrderView;

/// How long a display shows a paid, expired or cancelled order before going idle.
pub const DISPLAY_OUTCOME_FOR: Duration = Duration::from_secs(8);
/// Orders the checkout page lists: the newest of the day (the count and total
/// cover them all; the whole day is paged on `/day`), so the page the cashier
/// uses hundreds of times a day costs the same at 8 pm as at 8 am.
pub const DAY_NEWEST: usize = 15;
/// Orders on one page of the whole day.
pub const DAY_PAGE: usize = 50;

/// A display's secret link id: 128 random bits as 32 hex digits. Stored only
/// as its SHA-256, so a copy of the database opens no display.
#[derive(Clone, PartialEq, Eq)]
pub struct DisplayToken(String);

impl std::fmt::Debug for DisplayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DisplayToken(..)")
    }
}

impl DisplayToken {
    fn generate() -> Self {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        DisplayToken(hex::encode(b))
    }

    /// Accepts only the shape `generate` makes, so junk never reaches a query.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| DisplayToken(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored: looked up by equality of hashes, so the comparison
    /// leaks nothing of the token itself.
    fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// A cashier's orders today (the shop's day), newest first, with the day's figures.
#[derive(Debug, Clone)]
pub struct CashierDay {
    pub orders: Vec<OrderRow>,
    /// Orders created today, and how many of them are paid, for how much.
    pub created: i64,
    pub paid: i64,
    pub paid_total: Fen,
    pub now: Millis,
}

/// One page of a cashier's day, newest first, with the day's figures.
#[derive(Debug, Clone)]
pub struct CashierDayPage {
    pub day: CashierDay,
    /// The last order listed, when older ones follow (the next page starts below it).
    pub older: Option<OrderNo>,
}

/// What a customer display shows now.
#[derive(Debug, Clone)]
pub enum DisplayView {
    /// The token is unknown or was revoked: the display is told it is disconnected.
    Disconnected,
    /// Nothing to show but the shop's name.
    Idle,
    /// The cashier's current order: open (QR), or just paid / expired / cancelled.
    Order(Box<OrderView>),
}

impl DisplayView {
    /// When this view changes by itself (an outcome shown long enough goes idle).
    pub fn changes_at(&self) -> Option<Millis> {
        match self {
            DisplayView::Order(v) if v.order.state != OrderState::Open => {
                outcome_at(&v.order).map(|t| t.plus(DISPLAY_OUTCOME_FOR))
            }
            _ => None,
        }
    }
}

/// When an order reached its outcome (paid, expired, cancelled).
fn outcome_at(o: &OrderRow) -> Option<Millis> {
    match o.state {
        OrderState::Open => None,
        OrderState::Paid => o.paid_at,
        OrderState::Expired | OrderState::Cancelled => o.ended_at,
    }
}

/// The display of `order` at `now`: open → shown; an outcome → shown for a few seconds.
fn display_of(order: Option<OrderRow>, now: Millis) -> Option<OrderRow> {
    let o = order?;
    if o.state == OrderState::Open {
        return Some(o);
    }
    let at = outcome_at(&o)?;
    (now < at.plus(DISPLAY_OUTCOME_FOR)).then_some(o)
}

impl Checkout {
    /// Watches one cashier's counter (new orders, display pairing): subscribe before reading.
    pub fn subscribe_cashier(&self, cashier: UserId) -> Subscription<UserId> {
        self.inner.hub.subscribe_cashier(cashier)
    }

    /// Tells the cashier's displays and pages that a new order of theirs exists.
    pub(super) fn publish_cashier(&self, cashier: Option<UserId>) {
        if let Some(c) = cashier {
            self.inner.hub.publish_cashier(c);
        }
    }

    /// The cashier's newest orders created in `day` (the shop's today, cut by
    /// the caller in the shop's time zone), newest first, and the day's figures.
    pub async fn cashier_day(
        &self,
        cashier: UserId,
        day: Range,
    ) -> Result<CashierDay, CheckoutError> {
        Ok(self
            .cashier_day_page(cashier, day, None, DAY_NEWEST)
            .await?
            .day)
    }

    /// `limit` of the cashier's orders of `day` below the order numbered
    /// `after` (from the newest without one), and the day's figures. An
    /// `after` that is not one of the cashier's orders of that day lists
    /// nothing rather than someone else's.
    pub async fn cashier_day_page(
        &self,
        cashier: UserId,
        day: Range,
        after: Option<OrderNo>,
        limit: usize,
    ) -> Result<CashierDayPage, CheckoutError> {
        let now = self.now();
        let range = (Millis(day.from_ms), Millis(day.to_ms));
        Ok(self
            .read_model()
            .read(move |c| {
                let cursor = after
                    .map(|no| counter::cursor_of(c, cashier, &no))
                    .transpose()?;
                // One more than asked says whether an older page follows.
                let mut orders = match cursor {
                    Some(None) => Vec::new(),
                    Some(at) => counter::cashier_orders_page(c, cashier, range, at, limit + 1)?,
                    None => counter::cashier_orders_page(c, cashier, range, None, limit + 1)?,
                };
                let older = (orders.len() > limit).then(|| {
                    orders.truncate(limit);
                    orders.last().map(|o| o.order_no.clone())
                });
                let (created, paid, paid_total) =
                    counter::cashier_totals_between(c, cashier, range.0, range.1)?;
                Ok(CashierDayPage {
                    day: CashierDay {
                        orders,
                        created,
                        paid,
                        paid_total,
                        now,
                    },
                    older: older.flatten(),
                })
            })
            .await?)
    }

    /// Pairs a new display for the cashier; an earlier one stops working at once.
    pub async fn pair_display(&self, cashier: UserId) -> Result<DisplayToken, CheckoutError> {
        let token = DisplayToken::generate();
        let hash = token.hash();
        let now = self.now();
        self.store()
            .write(move |tx| displays::pair(tx, cashier, &hash, now))
            .await?;
        self.inner.hub.publish_cashier(cashier);
        Ok(token)
    }

    /// Revokes the cashier's display (it shows "disconnected" at once); whether there was one.
    pub async fn revoke_display(&self, cashier: UserId) -> Result<bool, CheckoutError> {
        let now = self.now();
        let revoked = self
            .store()
            .write(move |tx| displays::revoke(tx, cashier, now))
            .await?;
        self.inner.hub.publish_cashier(cashier);
        Ok(revoked)
    }

    /// Every active display, for the admin (who may revoke any of them).
    pub async fn active_displays(&self) -> Result<Vec<displays::ActiveDisplay>, CheckoutError> {
        Ok(self.read_model().read(displays::all_active).await?)
    }

    /// An admin revokes display `id` (it shows "disconnected" at once);
    /// whether it was active.
    pub async fn revoke_display_by_id(&self, id: i64) -> Result<bool, CheckoutError> {
        let now = self.now();
        let cashier = self
            .store()
            .write(move |tx| displays::revoke_by_id(tx, id, now))
            .await?;
        if let Some(c) = cashier {
            self.inner.hub.publish_cashier(c);
        }
        Ok(cashier.is_some())
    }

    /// The cashier's active display, if any: when it was paired.
    pub async fn active_display(&self, cashier: UserId) -> Result<Option<Millis>, CheckoutError> {
        Ok(self
            .read_model()
            .read(move |c| Ok(displays::active_of(c, cashier)?.map(|d| d.created_at)))
            .await?)
    }

    /// The cashier a display token belongs to, even when revoked (so its
    /// stream can still hear the revocation), or `None` for a token never issued.
    pub async fn display_owner(
        &self,
        token: &DisplayToken,
    ) -> Result<Option<UserId>, CheckoutError> {
        let hash = token.hash();
        Ok(self
            .read_model()
            .read(move |c| displays::known_hash(c, &hash))
            .await?)
    }

    /// What the display with this token shows now.
    pub async fn display_view(&self, token: &DisplayToken) -> Result<DisplayView, CheckoutError> {
        let hash = token.hash();
        let now = self.now();
        Ok(self
            .read_model()
            .read(move |c| {
                let Some(d) = displays::active_by_hash(c, &hash)? else {
                    return Ok(DisplayView::Disconnected);
                };
                let Some(order) =
                    display_of(counter::latest_order_of_cashier(c, d.cashier_id)?, now)
                else {
                    return Ok(DisplayView::Idle);
                };
                let qr = order
                    .current_qr_id
                    .map(|id| qrs::qr_by_id(c, id))
                    .transpose()?;
                let refunded = crate::store::refunds::refunded_of_order(c, order.id)?;
                let paid = crate::store::payments::paid_of_order(c, order.id)?;
                Ok(DisplayView::Order(Box::new(OrderView {
                    order,
                    qr,
                    now,
                    refunded,
                    paid,
                })))
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_tokens_are_128_bit_hex_and_stored_hashed() {
        let t = DisplayToken::generate();
        assert_eq!(t.as_str().len(), 32);
        assert_eq!(DisplayToken::parse(t.as_str()), Some(t.clone()));
        assert_ne!(DisplayToken::generate(), t);
        assert!(DisplayToken::parse("../x").is_none());
        assert_eq!(t.hash().len(), 64);
        assert_ne!(t.hash(), t.as_str());
        assert_eq!(format!("{t:?}"), "DisplayToken(..)", "never in a log");
    }
}
