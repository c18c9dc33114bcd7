//! Refunds in the admin area: `POST /admin/orders/{order_no}/refunds` (first
//! a confirmation of what goes back and to whom, then the refund itself),
//! the retry of a refused refund, and `GET /admin/refunds`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use jiff::tz::TimeZone;

use super::selection::{Selection, admin_selection};
use crate::checkout::OrderView;
use crate::checkout::refund::{
    NOT_ENOUGH_MESSAGE, RefundError, RefundInput, RefundPlan, RefundedLabel, refunded_label,
};
use crate::store::refunds::RefundRow;
use crate::store::reports::{self, ListedRefund};
use crate::values::money::{AmountError, Fen};
use crate::values::order::{OrderNo, RefundState, UserId};
use crate::values::shop_time::shop_time;
use crate::values::trade::{OutRefundNo, TransactionId};
use crate::web::auth::CurrentUser;
use crate::web::error::WebError;
use crate::web::i18n::{EN, Texts};
use crate::web::render::html;
use crate::web::respond::see_other;
use crate::web::{AppState, Layout};

/// Refunds per page of `/admin/refunds`.
const PAGE_SIZE: usize = 50;

/// The words of the refund pages, in both languages (kept here, beside the
/// pages that use them).
pub struct RefundTexts {
    pub refunds_title: &'static str,
    pub no_refunds: &'static str,
    pub refund_button: &'static str,
    pub refund_amount: &'static str,
    pub refund_reason: &'static str,
    pub refund_form_title: &'static str,
    pub refundable: &'static str,
    pub confirm_title: &'static str,
    pub confirm_goes_back: &'static str,
    pub confirm_to: &'static str,
    pub confirm_button: &'static str,
    pub back: &'static str,
    pub refund_second: &'static str,
    pub double_reason: &'static str,
    pub out_refund_no: &'static str,
    pub who: &'static str,
    pub when: &'static str,
    pub refund_state: &'static str,
    pub refund_id: &'static str,
    pub account: &'static str,
    pub retry: &'static str,
    pub refunded_fully: &'static str,
    pub refunded_partly: &'static str,
    pub gross: &'static str,
    pub refunded: &'static str,
    pub net: &'static str,
    pub all_refunds: &'static str,
    pub payment: &'static str,
}

pub static ZH: RefundTexts = RefundTexts {
    refunds_title: "退款",
    no_refunds: "没有退款。",
    refund_button: "退款…",
    refund_amount: "退款金额（元）",
    refund_reason: "退款原因",
    refund_form_title: "退款",
    refundable: "可退金额",
    confirm_title: "确认退款",
    confirm_goes_back: "退回",
    confirm_to: "退给付款人（原路退回）",
    confirm_button: "确认退款",
    back: "返回订单",
    refund_second: "退还第二笔付款",
    double_reason: "重复付款退款",
    out_refund_no: "退款单号",
    who: "操作人",
    when: "时间",
    refund_state: "状态",
    refund_id: "微信退款单号",
    account: "退款入账账户",
    retry: "重试",
    refunded_fully: "已退款",
    refunded_partly: "部分退款",
    gross: "收款",
    refunded: "退款",
    net: "净额",
    all_refunds: "全部退款",
    payment: "付款",
};

pub static EN_TEXTS: RefundTexts = RefundTexts {
    refunds_title: "Refunds",
    no_refunds: "No refunds.",
    refund_button: "Refund…",
    refund_amount: "Amount to refund (yuan)",
    refund_reason: "Reason",
    refund_form_title: "Refund",
    refundable: "Still refundable",
    confirm_title: "Confirm the refund",
    confirm_goes_back: "Goes back",
    confirm_to: "to the payer, the way they paid",
    confirm_button: "Refund now",
    back: "Back to the order",
    refund_second: "Refund the second payment",
    double_reason: "double payment",
    out_refund_no: "out_refund_no",
    who: "By",
    when: "When",
    refund_state: "State",
    refund_id: "refund_id",
    account: "Account",
    retry: "Retry",
    refunded_fully: "Refunded",
    refunded_partly: "Partly refunded",
    gross: "Gross",
    refunded: "Refunded",
    net: "Net",
    all_refunds: "All refunds",
    payment: "Payment",
};

pub fn refund_texts(t: &Texts) -> &'static RefundTexts {
    if t.lang == EN.lang { &EN_TEXTS } else { &ZH }
}

/// 已退款 / 部分退款 for an order page, or empty.
pub fn refunded_text(t: &Texts, v: &OrderView) -> &'static str {
    let r = refund_texts(t);
    match refunded_label(v.order.state, v.paid, v.refunded) {
        RefundedLabel::None => "",
        RefundedLabel::Partly => r.refunded_partly,
        RefundedLabel::Fully => r.refunded_fully,
    }
}

/// The English of a refund's stored error (the domain's and the gateway
/// seam's own sentences) and its Chinese; what the gateway itself said stays
/// as it said it.
const ERROR_WORDS: [(&str, &str); 6] = [
    (NOT_ENOUGH_MESSAGE, "商户账户余额不足，请充值后重试"),
    (
        "could not reach the payment gateway: ",
        "无法连接支付网关：",
    ),
    (
        "the payment gateway's answer was not valid: ",
        "支付网关的应答不可信：",
    ),
    (
        "the payment gateway refused the request: ",
        "支付网关拒绝了请求：",
    ),
    ("the payment gateway answered ", "支付网关应答 "),
    (
        "refunds need the merchant's API certificate: set wxpay.client_cert_file and wxpay.client_key_file (apiclient_cert.pem and apiclient_key.pem from the merchant platform)",
        "退款需要商户 API 证书：请设置 wxpay.client_cert_file 和 wxpay.client_key_file（商户平台下载的 apiclient_cert.pem 和 apiclient_key.pem）",
    ),
];

/// A refund's stored error in the page's language.
pub fn refund_error_text(t: &Texts, raw: &str) -> String {
    if t.lang == EN.lang {
        return raw.to_string();
    }
    ERROR_WORDS
        .iter()
        .fold(raw.to_string(), |s, (en, zh)| s.replace(en, zh))
}

/// A refund's state as the admin reads it (SPEC names; a pending one is
/// processing, a refused one says so).
pub fn state_name(s: RefundState) -> &'static str {
    match s {
        RefundState::Pending | RefundState::Processing => "processing",
        RefundState::Succeeded => "succeeded",
        RefundState::Closed => "closed",
        RefundState::Abnormal => "abnormal",
        RefundState::Failed => "refused",
    }
}

/// A refund row as the tables show it.
pub struct RefundLine {
    pub out_refund_no: String,
    pub amount: Fen,
    pub reason: String,
    pub who: String,
    pub when: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub refund_id: String,
    pub account: String,
    /// Why it is stuck or was refused, in the page's language.
    pub error: String,
    /// The same as stored, word for word (shown on hover, for support).
    pub error_detail: String,
    pub retryable: bool,
    pub order_no: String,
    pub transaction_id: String,
}

impl RefundLine {
    pub fn new(r: &RefundRow, tz: &TimeZone, t: &Texts) -> RefundLine {
        let error_detail = r
            .last_error
            .clone()
            .filter(|_| r.state.is_open() || r.state == RefundState::Failed)
            .unwrap_or_default();
        RefundLine {
            out_refund_no: r.out_refund_no.to_string(),
            amount: r.amount,
            reason: r.reason.clone(),
            who: r.username.clone(),
            when: shop_time(tz, r.created_at),
            state: state_name(r.state),
            state_class: r.state.as_str(),
            refund_id: r.refund_id.clone().unwrap_or_default(),
            account: r.account.clone().unwrap_or_default(),
            error: refund_error_text(t, &error_detail),
            error_detail,
            retryable: r.state == RefundState::Failed,
            order_no: String::new(),
            transaction_id: String::new(),
        }
    }

    fn listed(l: &ListedRefund, tz: &TimeZone, t: &Texts) -> RefundLine {
        let mut line = RefundLine::new(&l.refund, tz, t);
        line.order_no = l.order_no.to_string();
        line.transaction_id = l.transaction_id.to_string();
        line
    }
}

/// The form as typed.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RefundForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    transaction_id: String,
    /// `1` on the confirmation page's form: do it.
    #[serde(default)]
    confirm: String,
    /// Chosen by the confirmation page, so a form sent twice is one refund.
    #[serde(default)]
    out_refund_no: String,
}

/// The refund form again, with the admin's values and why it was refused (422).
#[derive(Template)]
#[template(path = "admin/refund.html")]
struct RefundFormPage<'a> {
    t: &'static Texts,
    r: &'static RefundTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    order_no: &'a str,
    amount: &'a str,
    reason: &'a str,
    transaction_id: &'a str,
    error: String,
}

#[derive(Template)]
#[template(path = "admin/refund_confirm.html")]
struct ConfirmPage<'a> {
    t: &'static Texts,
    r: &'static RefundTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    plan: &'a RefundPlan,
    amount: Fen,
    reason: &'a str,
    paid_at: String,
}

fn amount_error(t: &Texts, e: &AmountError) -> String {
    let en = t.lang == EN.lang;
    match e {
        AmountError::Empty if en => "Enter the amount to refund.".into(),
        AmountError::Empty => "请输入退款金额。".into(),
        AmountError::NotANumber if en => "The amount must be a number, e.g. 1.00.".into(),
        AmountError::NotANumber => "金额格式不正确，例如 1.00。".into(),
        AmountError::TooManyDecimals if en => "The amount can have at most two decimals.".into(),
        AmountError::TooManyDecimals => "金额最多两位小数。".into(),
        AmountError::NotPositive if en => "The amount must be more than zero.".into(),
        AmountError::NotPositive => "退款金额必须大于零。".into(),
        AmountError::AboveMax(m) if en => format!("The amount is above what was paid ({m})."),
        AmountError::AboveMax(m) => format!("退款金额超过付款金额（{m}）。"),
    }
}

fn refusal_text(t: &Texts, e: &RefundError) -> String {
    let en = t.lang == EN.lang;
    match e {
        RefundError::TooMuch { refundable } if !en => {
            format!("超过可退金额：还可退 {refundable}。")
        }
        RefundError::TooMany if !en => "这笔付款已退款 50 次，达到上限。".into(),
        RefundError::TooLate if !en => "付款已超过一年，不能再退款。".into(),
        RefundError::NoPayment if !en => "这个订单没有可退的付款。".into(),
        RefundError::UnknownPayment if !en => "这个订单没有该 transaction_id 的付款。".into(),
        RefundError::NoOrder if !en => "没有这个订单。".into(),
        RefundError::NotRetryable if !en => "这笔退款不能重试：它没有被拒绝。".into(),
        RefundError::NoRefund if !en => "没有这笔退款（该退款单号属于另一笔退款）。".into(),
        RefundError::Checkout(_) if !en => "暂时无法退款，请稍后再试。".into(),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
                None => s,
            }
        }
    }
}

/// `POST /admin/orders/{order_no}/refunds`: without `confirm`, the
/// confirmation page; with it, the refund (303 back to the order).
pub async fn create(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    user.check_csrf(&form.csrf_token)?;
    // Not a number of ours: no such order, as the refund would find.
    let order_no = OrderNo::parse(&path.into_inner()).ok_or(WebError::NotFound)?;
    let r = refund_texts(state.t);
    let refuse = |error: String| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RefundFormPage {
                t: state.t,
                r,
                layout: state.layout(),
                username: &user.0.username,
                csrf_token: &user.0.csrf_token,
                order_no: order_no.as_str(),
                amount: &form.amount,
                reason: &form.reason,
                transaction_id: &form.transaction_id,
                error,
            },
        )
    };
    let amount = match Fen::parse_yuan(&form.amount, state.max_amount) {
        Ok(a) => a,
        Err(e) => return Ok(refuse(amount_error(state.t, &e))),
    };
    let transaction_id = match form.transaction_id.trim() {
        "" => None,
        t => match TransactionId::new(t) {
            Ok(t) => Some(t),
            Err(_) => return Ok(refuse(refusal_text(state.t, &RefundError::UnknownPayment))),
        },
    };
    let reason = form.reason.trim().to_string();
    if form.confirm != "1" {
        return match state
            .checkout
            .refund_plan(&order_no, transaction_id, Some(amount))
            .await
        {
            Ok(plan) => Ok(html(
                StatusCode::OK,
                &ConfirmPage {
                    t: state.t,
                    r,
                    layout: state.layout(),
                    username: &user.0.username,
                    csrf_token: &user.0.csrf_token,
                    paid_at: shop_time(&state.tz, plan.payment.created_at),
                    plan: &plan,
                    amount,
                    reason: &reason,
                },
            )),
            Err(RefundError::NoOrder) => Err(WebError::NotFound),
            Err(RefundError::Checkout(e)) => Err(e.into()),
            Err(e) => Ok(refuse(refusal_text(state.t, &e))),
        };
    }
    let out_refund_no = match form.out_refund_no.trim() {
        "" => None,
        n => Some(OutRefundNo::new(n).map_err(|_| WebError::BadRequest(String::new()))?),
    };
    let input = RefundInput {
        order_no: order_no.clone(),
        amount,
        reason,
        transaction_id,
        out_refund_no,
        user_id: Some(UserId(user.0.user_id)),
        username: user.0.username.clone(),
    };
    match state.checkout.request_refund(input).await {
        Ok(_) => Ok(see_other(&format!("/admin/orders/{order_no}#refunds"))),
        Err(RefundError::NoOrder) => Err(WebError::NotFound),
        Err(RefundError::Checkout(e)) => Err(e.into()),
        Err(e) => Ok(refuse(refusal_text(state.t, &e))),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /admin/orders/{order_no}/refunds/{out_refund_no}/retry`: a refused
/// refund (e.g. NOTENOUGH, once the account is topped up) sent again with the
/// same out_refund_no.
pub async fn retry(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    form: web::Form<RetryForm>,
) -> Result<HttpResponse, WebError> {
    user.require_admin()?;
    user.check_csrf(&form.csrf_token)?;
    let (order_no, no) = path.into_inner();
    let order_no = OrderNo::parse(&order_no).ok_or(WebError::NotFound)?;
    let no = OutRefundNo::new(no).map_err(|_| WebError::NotFound)?;
    match state.checkout.retry_refund(&order_no, &no).await {
        Ok(_) => Ok(see_other(&format!("/admin/orders/{order_no}#refunds"))),
        Err(RefundError::NoRefund | RefundError::NoOrder) => Err(WebError::NotFound),
        Err(RefundError::Checkout(e)) => Err(e.into()),
        Err(e) => Err(WebError::BadRequest(refusal_text(state.t, &e))),
    }
}

#[derive(Template)]
#[template(path = "admin/refunds.html")]
struct RefundsPage<'a> {
    t: &'static Texts,
    r: &'static RefundTexts,
    layout: Layout<'a>,
    username: &'a str,
    csrf_token: &'a str,
    sel: &'a Selection,
    cashiers: Vec<(i64, String)>,
    rows: Vec<RefundLine>,
    count: i64,
    page: usize,
    pages: usize,
    prev_url: Option<String>,
    next_url: Option<String>,
}

/// `GET /admin/refunds`: every refund, newest first, with `/admin`'s filters
/// (the range is the day it was asked for).
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let (sel, filter, _) = admin_selection(&req, &state, &user)?;
    let offset = (sel.page - 1).saturating_mul(PAGE_SIZE);
    let ((rows, count), cashiers) = state
        .checkout
        .read_model()
        .read(move |c| {
            Ok((
                reports::refunds_page(c, &filter, PAGE_SIZE, offset)?,
                reports::cashiers(c)?,
            ))
        })
        .await?;
    let pages = usize::try_from(count)
        .unwrap_or(0)
        .div_ceil(PAGE_SIZE)
        .max(1);
    let qs = sel.query_string();
    let page_url = |p: usize| format!("/admin/refunds?{qs}&page={p}");
    let page = RefundsPage {
        t: state.t,
        r: refund_texts(state.t),
        layout: state.layout(),
        username: &user.0.username,
        csrf_token: &user.0.csrf_token,
        sel: &sel,
        cashiers,
        rows: rows
            .iter()
            .map(|l| RefundLine::listed(l, &state.tz, state.t))
            .collect(),
        count,
        page: sel.page,
        pages,
        prev_url: (sel.page > 1).then(|| page_url(sel.page - 1)),
        next_url: (sel.page < pages).then(|| page_url(sel.page + 1)),
    };
    Ok(html(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::cause::Failure;
    use crate::checkout::gateway::{GatewayError, Refusal};
    use crate::web::i18n::ZH_CN;

    /// Every sentence of ours a refund's error can start with reads in
    /// Chinese on a Chinese page; the gateway's own words stay.
    #[test]
    fn stored_refund_errors_read_in_chinese() {
        let errors = [
            GatewayError::Transport(Failure::new("timed out")),
            GatewayError::Unbelievable(Failure::new("bad signature")),
            GatewayError::Protocol(crate::wxpay::v2::WxPayError::NoClientCertificate.to_string()),
            GatewayError::Business {
                kind: Refusal::NotEnough,
                code: "NOTENOUGH".into(),
                message: "基本账户余额不足".into(),
            },
        ];
        for e in errors {
            let stored = format!("{NOT_ENOUGH_MESSAGE} ({e})");
            let zh = refund_error_text(&ZH_CN, &stored);
            assert!(!zh.contains("the ") && !zh.contains("refunds need"), "{zh}");
            assert_eq!(refund_error_text(&EN, &stored), stored);
        }
    }
}
