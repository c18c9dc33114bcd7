//! Every word a page shows, in Chinese (the default) and English.

pub mod counter;
mod en;
pub mod speech;
pub mod webhooks;
mod zh_cn;

pub use en::EN;
pub use zh_cn::ZH_CN;

use crate::checkout::CashierLimit;
use crate::config::Language;
use crate::values::books::{DayState, DifferenceKind};
use crate::values::money::AmountError;
use crate::values::money::Fen;
use crate::values::order::{OrderState, QrState};

pub struct Texts {
    /// The language itself, for choosing the other tables (never compare `lang`).
    pub language: Language,
    /// The page's `lang` attribute.
    pub lang: &'static str,
    pub app: &'static str,
    pub login_title: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub login_failed: &'static str,
    pub too_many_attempts: &'static str,
    pub login_cross_site: &'static str,
    /// `{n}` is the limit.
    pub too_many_open_orders: &'static str,
    pub too_many_orders_per_minute: &'static str,
    /// Too many sign-ins being checked right now.
    pub login_busy: &'static str,
    /// Too many sign-ins to one account from addresses it does not know.
    pub login_account_busy: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub checkout_title: &'static str,
    pub amount_label: &'static str,
    pub amount_hint: &'static str,
    pub description_label: &'static str,
    pub description_hint: &'static str,
    pub create_order: &'static str,
    pub admin: &'static str,
    pub state_open: &'static str,
    pub state_paid: &'static str,
    pub state_expired: &'static str,
    pub state_cancelled: &'static str,
    pub scan_hint: &'static str,
    pub seconds_left: &'static str,
    pub qr_preparing: &'static str,
    pub qr_failed: &'static str,
    /// What a customer is told instead of the gateway's diagnostics.
    pub qr_failed_customer: &'static str,
    pub retry: &'static str,
    pub cancel_order: &'static str,
    pub print: &'static str,
    pub new_order: &'static str,
    pub order_no: &'static str,
    pub valid_until: &'static str,
    pub print_payable_until: &'static str,
    pub print_replaced: &'static str,
    pub receipt_title: &'static str,
    pub receipt_method: &'static str,
    pub receipt_wechat: &'static str,
    pub receipt_refunded: &'static str,
    pub paid_at: &'static str,
    pub late_flag: &'static str,
    pub double_paid_flag: &'static str,
    /// A payment fact that contradicts the records (see the timeline).
    pub anomaly_flag: &'static str,
    pub paid_message: &'static str,
    pub expired_message: &'static str,
    pub cancelled_message: &'static str,
    pub no_js_hint: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub bad_request: &'static str,
    pub csrf: &'static str,
    pub server_error: &'static str,
    pub back: &'static str,
    pub amount_empty: &'static str,
    pub amount_nan: &'static str,
    pub amount_decimals: &'static str,
    pub amount_not_positive: &'static str,
    pub amount_too_big: &'static str,
    pub description_too_long: &'static str,
    pub order_ended: &'static str,
    pub admin_title: &'static str,
    pub today: &'static str,
    pub this_month: &'static str,
    pub orders_unit: &'static str,
    pub filter_from: &'static str,
    pub filter_to: &'static str,
    pub filter_cashier: &'static str,
    pub all_cashiers: &'static str,
    pub search: &'static str,
    pub search_hint: &'static str,
    pub flagged_only: &'static str,
    pub apply_filter: &'static str,
    pub reset_filter: &'static str,
    pub filtered_total: &'static str,
    pub daily_revenue: &'static str,
    pub monthly_revenue: &'static str,
    pub chart_max: &'static str,
    pub chart_numbers: &'static str,
    pub day: &'static str,
    pub orders_count: &'static str,
    pub amount: &'static str,
    pub cashier: &'static str,
    pub transaction_id: &'static str,
    pub out_trade_no: &'static str,
    pub flags: &'static str,
    pub no_paid_orders: &'static str,
    pub prev_page: &'static str,
    pub next_page: &'static str,
    pub page_prefix: &'static str,
    pub page_suffix: &'static str,
    pub export_csv: &'static str,
    pub reconciliation_title: &'static str,
    pub reconciliation_hint: &'static str,
    pub reconciliation_none: &'static str,
    pub bill_day: &'static str,
    pub bill_payments: &'static str,
    pub bill_gross: &'static str,
    pub bill_refunds: &'static str,
    pub bill_fees: &'static str,
    pub bill_net: &'static str,
    pub bill_checked_at: &'static str,
    pub differences_title: &'static str,
    pub no_differences: &'static str,
    pub difference_kind_title: &'static str,
    pub out_refund_no: &'static str,
    pub amount_here: &'static str,
    pub amount_in_bill: &'static str,
    pub day_matched: &'static str,
    pub day_differences: &'static str,
    pub day_no_bill: &'static str,
    pub day_pending: &'static str,
    pub diff_missing_here: &'static str,
    pub diff_missing_in_bill: &'static str,
    pub diff_amount_differs: &'static str,
    pub diff_refund_missing_here: &'static str,
    pub diff_refund_missing_in_bill: &'static str,
    pub double_paid_alert: &'static str,
    pub show_them: &'static str,
    pub bad_date: &'static str,
    pub range_too_long: &'static str,
    pub bad_cashier: &'static str,
    pub order_title: &'static str,
    pub state: &'static str,
    pub created_at: &'static str,
    pub expires_at: &'static str,
    pub ended_at: &'static str,
    pub customer_page: &'static str,
    pub qrs_title: &'static str,
    pub qr_no: &'static str,
    pub qr_state: &'static str,
    pub shown_until: &'static str,
    pub gateway_expiry: &'static str,
    pub polls: &'static str,
    pub last_error: &'static str,
    pub notifications_title: &'static str,
    pub no_notifications: &'static str,
    pub received_at: &'static str,
    pub remote_addr: &'static str,
    pub signature: &'static str,
    pub signature_ok: &'static str,
    pub signature_bad: &'static str,
    pub outcome: &'static str,
    pub body: &'static str,
    pub events_title: &'static str,
    pub payments_title: &'static str,
    pub no_payments: &'static str,
    pub source: &'static str,
    pub gateway_time: &'static str,
    pub qr_creating: &'static str,
    pub qr_failed_state: &'static str,
    pub qr_open: &'static str,
    pub qr_closing: &'static str,
    pub qr_closed: &'static str,
    pub qr_paid: &'static str,
    pub all_orders: &'static str,
    /// The order is open and its QR is not a failed one (a second click).
    pub nothing_to_retry: &'static str,
}

pub fn texts(lang: Language) -> &'static Texts {
    match lang {
        Language::ZhCn => &ZH_CN,
        Language::En => &EN,
    }
}

impl Texts {
    pub fn day_state(&self, s: DayState) -> &'static str {
        match s {
            DayState::Matched => self.day_matched,
            DayState::Differences => self.day_differences,
            DayState::NoBill => self.day_no_bill,
            DayState::Pending => self.day_pending,
        }
    }

    pub fn difference_kind(&self, k: DifferenceKind) -> &'static str {
        match k {
            DifferenceKind::MissingHere => self.diff_missing_here,
            DifferenceKind::MissingInBill => self.diff_missing_in_bill,
            DifferenceKind::AmountDiffers => self.diff_amount_differs,
            DifferenceKind::RefundMissingHere => self.diff_refund_missing_here,
            DifferenceKind::RefundMissingInBill => self.diff_refund_missing_in_bill,
        }
    }

    pub fn cashier_limit(&self, limit: CashierLimit) -> String {
        let (text, n) = match limit {
            CashierLimit::OpenOrders(n) => (self.too_many_open_orders, n),
            CashierLimit::PerMinute(n) => (self.too_many_orders_per_minute, n),
        };
        text.replace("{n}", &n.to_string())
    }

    pub fn amount_error(&self, e: &AmountError) -> String {
        match e {
            AmountError::Empty => self.amount_empty.into(),
            AmountError::NotANumber => self.amount_nan.into(),
            AmountError::TooManyDecimals => self.amount_decimals.into(),
            AmountError::NotPositive => self.amount_not_positive.into(),
            AmountError::AboveMax(max) => {
                format!("{} ({})", self.amount_too_big, Fen::to_string(max))
            }
        }
    }

    /// An order's state as every page names it.
    pub fn order_state(&self, s: OrderState) -> &'static str {
        match s {
            OrderState::Open => self.state_open,
            OrderState::Paid => self.state_paid,
            OrderState::Expired => self.state_expired,
            OrderState::Cancelled => self.state_cancelled,
        }
    }

    /// A QR's state as the admin's order page names it.
    pub fn qr_state_label(&self, s: QrState) -> &'static str {
        match s {
            QrState::Creating => self.qr_creating,
            QrState::Failed => self.qr_failed_state,
            QrState::Open => self.qr_open,
            QrState::Closing => self.qr_closing,
            QrState::Closed => self.qr_closed,
            QrState::Paid => self.qr_paid,
        }
    }
}
