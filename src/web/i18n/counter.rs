//! The words of the counter's pages (the customer display, pairing, the
//! cashier's day), beside `Texts`.

use crate::config::Language;

/// The words of the counter's pages, beside `Texts`.
pub struct CounterTexts {
    pub display_title: &'static str,
    pub welcome: &'static str,
    pub scan_to_pay: &'static str,
    pub preparing: &'static str,
    pub paid: &'static str,
    pub paid_thanks: &'static str,
    pub expired: &'static str,
    pub cancelled: &'static str,
    pub disconnected: &'static str,
    pub disconnected_hint: &'static str,
    pub voice_on: &'static str,
    pub voice_off: &'static str,
    pub pair_title: &'static str,
    pub pair_intro: &'static str,
    pub pair_button: &'static str,
    pub pair_again: &'static str,
    pub paired_since: &'static str,
    pub not_paired: &'static str,
    pub revoke: &'static str,
    pub link_once: &'static str,
    pub display_link: &'static str,
    pub today_title: &'static str,
    pub today_none: &'static str,
    pub today_created: &'static str,
    pub today_paid: &'static str,
    pub time: &'static str,
    pub customer_display: &'static str,
}

pub static COUNTER_ZH: CounterTexts = CounterTexts {
    display_title: "顾客屏",
    welcome: "欢迎光临",
    scan_to_pay: "请使用微信扫一扫付款",
    preparing: "正在生成收款码…",
    paid: "支付成功",
    paid_thanks: "已支付，谢谢惠顾",
    expired: "订单已过期",
    cancelled: "订单已取消",
    disconnected: "已断开",
    disconnected_hint: "此顾客屏已被收银员取消配对。",
    voice_on: "语音播报：开",
    voice_off: "开启语音播报",
    pair_title: "顾客屏",
    pair_intro: "在面向顾客的手机或平板上打开下面的链接（或扫描二维码）：你新建的订单会立即显示在那里。",
    pair_button: "配对顾客屏",
    pair_again: "重新配对（旧的顾客屏将断开）",
    paired_since: "已配对顾客屏，配对时间",
    not_paired: "尚未配对顾客屏。",
    revoke: "取消配对",
    link_once: "此链接只显示这一次，请现在在顾客屏上打开。",
    display_link: "顾客屏链接",
    today_title: "今日订单",
    today_none: "今天还没有订单。",
    today_created: "笔订单",
    today_paid: "已收款",
    time: "时间",
    customer_display: "顾客屏",
};

pub static COUNTER_EN: CounterTexts = CounterTexts {
    display_title: "Customer display",
    welcome: "Welcome",
    scan_to_pay: "Scan with WeChat to pay",
    preparing: "Preparing the QR code…",
    paid: "Payment received",
    paid_thanks: "Paid, thank you",
    expired: "This order has expired",
    cancelled: "This order was cancelled",
    disconnected: "Disconnected",
    disconnected_hint: "The cashier has unpaired this display.",
    voice_on: "Announcements: on",
    voice_off: "Turn on announcements",
    pair_title: "Customer display",
    pair_intro: "Open this link (or scan the QR code) on the phone or tablet facing the customer: each order you create shows there at once.",
    pair_button: "Pair a customer display",
    pair_again: "Pair again (the old display disconnects)",
    paired_since: "A customer display is paired, since",
    not_paired: "No customer display is paired.",
    revoke: "Unpair",
    link_once: "This link is shown only once: open it on the display now.",
    display_link: "Display link",
    today_title: "Today's orders",
    today_none: "No orders yet today.",
    today_created: "orders",
    today_paid: "received",
    time: "Time",
    customer_display: "Customer display",
};

impl CounterTexts {
    pub fn of(lang: Language) -> &'static CounterTexts {
        match lang {
            Language::ZhCn => &COUNTER_ZH,
            Language::En => &COUNTER_EN,
        }
    }
}
