//! The words of the admin's webhook page.

use crate::config::Language;

/// The page's own words, beside `Texts`.
pub struct WebhookTexts {
    pub title: &'static str,
    pub pending: &'static str,
    pub delivered: &'static str,
    pub given_up: &'static str,
    pub queued: &'static str,
    pub given_up_alert: &'static str,
    pub event: &'static str,
    pub at: &'static str,
    pub attempts: &'static str,
    pub last: &'static str,
    pub next_attempt: &'static str,
    pub none: &'static str,
}

static ZH: WebhookTexts = WebhookTexts {
    title: "Webhook 推送",
    pending: "待重试",
    delivered: "已送达",
    given_up: "已放弃",
    queued: "排队中",
    given_up_alert: "条推送连续失败 24 小时后已放弃。",
    event: "事件",
    at: "发生时间",
    attempts: "尝试次数",
    last: "最近结果",
    next_attempt: "下次尝试",
    none: "还没有推送（设置 notify.webhook_urls 后，每笔收款都会推送）。",
};

static EN: WebhookTexts = WebhookTexts {
    title: "Webhooks",
    pending: "pending",
    delivered: "delivered",
    given_up: "given up",
    queued: "queued",
    given_up_alert: "given up after 24 hours of failed attempts.",
    event: "event",
    at: "at",
    attempts: "attempts",
    last: "last answer",
    next_attempt: "next attempt",
    none: "Nothing sent yet (set notify.webhook_urls and each payment is posted).",
};

impl WebhookTexts {
    pub fn of(lang: Language) -> &'static WebhookTexts {
        match lang {
            Language::ZhCn => &ZH,
            Language::En => &EN,
        }
    }
}
