//! The admin area: `GET /admin` (paid orders, totals, a revenue chart),
//! `GET /admin/orders.csv` (the same selection, streamed),
//! `GET /admin/orders/{order_no}` (one order's whole story, its refunds
//! among it), `GET /admin/refunds`, `GET /admin/webhooks`, the reconciliation
//! pages, and the refunds themselves (`refunds.rs`: the one part of the admin
//! area that changes something, through `checkout`).
//!
//! Read model (a decision): these pages only read, so they query
//! `store::reports`, a read-only module of report queries (orders, one order
//! with its refunds, the refunds list, webhook deliveries), on the
//! `ReadStore` of `Checkout::read_model`, which cannot write, instead of going
//! through `checkout`, which owns every change. No handler here calls another
//! `store` module's queries (they may name its row types to render them); the
//! reconciliation pages read through `checkout` (`reconciled_days`,
//! `reconciled_day`). Each handler reads extract → parse (`selection`, an
//! `OrderNo`) → one report call → render.

mod chart;
mod csv;
pub mod displays;
mod order;
mod orders;
mod reconciliation;
pub mod refunds;
mod selection;
mod webhooks;

pub use csv::orders_csv;
pub use order::order;
pub use orders::orders;
pub use reconciliation::{day as reconciliation_day, days as reconciliation_days};
pub use refunds::refunded_text;
pub use webhooks::webhooks;

#[cfg(test)]
mod tests {
    use askama::Template;

    /// The flag macros as both admin tables use them.
    #[derive(Template)]
    #[template(
        source = r#"{% import "_macros.html" as m %}<tr class="{% call m::flag_class(late, double_paid) %}{% endcall %}">{% call m::flags(late, double_paid, late_title, double_title) %}{% endcall %}"#,
        ext = "html"
    )]
    struct Flags<'a> {
        late: bool,
        double_paid: bool,
        late_title: &'a str,
        double_title: &'a str,
    }

    fn flags(late: bool, double_paid: bool, titles: (&str, &str)) -> String {
        Flags {
            late,
            double_paid,
            late_title: titles.0,
            double_title: titles.1,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn flags_render_as_the_tables_always_showed_them() {
        assert_eq!(flags(false, false, ("", "")), r#"<tr class="">"#);
        assert_eq!(
            flags(true, false, ("", "")),
            r#"<tr class="flag-late"><span class="flag late">late</span>"#
        );
        assert_eq!(
            flags(true, true, ("", "")),
            r#"<tr class="flag-double"><span class="flag late">late</span><span class="flag double">double_paid</span>"#
        );
        assert_eq!(
            flags(true, true, ("L", "D")),
            r#"<tr class="flag-double"><span class="flag late" title="L">late</span><span class="flag double" title="D">double_paid</span>"#
        );
    }
}
