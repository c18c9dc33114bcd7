//! WeChat Pay's daily trade bill as text, the same family in API v2
//! (`pay/downloadbill`) and v3 (`v3/bill/tradebill`): a header row, one row per
//! payment or refund whose every field starts with a back-quote, then a summary
//! header and a summary row. Amounts are yuan with two decimals, fees yuan with
//! five.
//!
//! Columns are found by their header name, never by position: the layout has
//! changed over the years (24 and 27 columns, SUCCESS bills without the refund
//! columns, REFUND bills with two more), and a product name may hold commas or
//! spaces, so a row is split on "`,`" after its leading back-quote.
//!
//! A leaf module: both protocols read it, the simulator writes it.

use crate::values::money::Fen;
pub use crate::values::money::millifen_to_fen;
pub use crate::values::shop_time::beijing;

/// One payment or refund as the bill lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillRow {
    /// `交易时间`, Beijing time as written (`2019-07-25 08:35:41`).
    pub trade_time: String,
    pub appid: String,
    pub mch_id: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub trade_type: String,
    /// `SUCCESS` for a payment, `REFUND` for a refund (`REVOKED` for a revoked one).
    pub trade_state: String,
    /// `应结订单金额` (old layout `总金额`): what the payment settles.
    pub settlement: Fen,
    pub coupon: Fen,
    pub refund_id: String,
    pub out_refund_no: String,
    /// `退款金额`: what a refund row gives back (0 on a payment row).
    pub refund: Fen,
    pub refund_state: String,
    pub product: String,
    /// `手续费`, in thousandths of a fen (the bill gives five decimals of yuan).
    pub fee_millifen: i64,
    /// `订单金额` where the layout has it, else the settlement.
    pub order_total: Fen,
}

impl BillRow {
    pub fn is_refund(&self) -> bool {
        self.trade_state == "REFUND"
    }
}

/// The summary row at the end of the bill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillSummary {
    pub rows: u64,
    pub settlement_total: Fen,
    pub refund_total: Fen,
    pub fee_total_millifen: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bill {
    pub rows: Vec<BillRow>,
    pub summary: BillSummary,
}

impl Bill {
    /// A bill of `rows` with the summary they add up to (what a gateway writes).
    pub fn of(rows: Vec<BillRow>) -> Bill {
        let summary = BillSummary {
            rows: rows.len() as u64,
            settlement_total: Fen::new(
                rows.iter()
                    .filter(|r| !r.is_refund())
                    .map(|r| r.settlement.get())
                    .sum(),
            ),
            refund_total: Fen::new(rows.iter().map(|r| r.refund.get()).sum()),
            fee_total_millifen: rows.iter().map(|r| r.fee_millifen).sum(),
        };
        Bill { rows, summary }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the bill is empty")]
    Empty,
    #[error("the bill has no {0} column")]
    MissingColumn(&'static str),
    #[error("bill line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("the bill has no summary row")]
    NoSummary,
    #[error("the bill's summary says {said} rows but it has {found}")]
    RowCount { said: u64, found: usize },
}

/// The header names of the current 27-column ALL layout, in order (what the
/// simulator writes).
pub const ALL_COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];

const SUMMARY_COLUMNS: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

/// The fields of one data row: "`a,`b,`c" → ["a", "b", "c"]. A field may hold
/// commas; only "," followed by "`" separates.
fn fields(line: &str) -> Option<Vec<&str>> {
    let rest = line.strip_prefix('`')?;
    Some(rest.split(",`").collect())
}

/// "6.00" / "0.04000" / "-1.5" → units of 10^-`scale` yuan.
fn decimal(text: &str, scale: u32) -> Option<i64> {
    let text = text.trim();
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > scale as usize
    {
        return None;
    }
    let mut v: i64 = whole.parse().ok()?;
    for i in 0..scale as usize {
        let d = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        v = v.checked_mul(10)?.checked_add(d)?;
    }
    Some(if neg { -v } else { v })
}

fn yuan(text: &str) -> Option<Fen> {
    if text.trim().is_empty() {
        return Some(Fen::ZERO);
    }
    decimal(text, 2).map(Fen::new)
}

/// Five decimals of yuan → thousandths of a fen.
fn fee(text: &str) -> Option<i64> {
    if text.trim().is_empty() {
        return Some(0);
    }
    decimal(text, 5)
}

/// Finds each named column in a header row.
struct Columns<'h>(Vec<&'h str>);

impl<'h> Columns<'h> {
    fn find(&self, names: &[&'static str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.0.iter().position(|h| h.trim() == *n))
    }

    fn need(&self, names: &[&'static str]) -> Result<usize, BillError> {
        self.find(names).ok_or(BillError::MissingColumn(names[0]))
    }
}

pub fn parse(text: &str) -> Result<Bill, BillError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(BillError::Empty)?;
    let cols = Columns(header.split(',').collect());
    let at = ColumnsAt {
        trade_time: cols.need(&["交易时间"])?,
        appid: cols.need(&["公众账号ID"])?,
        mch_id: cols.need(&["商户号"])?,
        transaction_id: cols.need(&["微信订单号"])?,
        out_trade_no: cols.need(&["商户订单号"])?,
        trade_type: cols.need(&["交易类型"])?,
        trade_state: cols.need(&["交易状态"])?,
        settlement: cols.need(&["应结订单金额", "总金额"])?,
        coupon: cols.find(&["代金券金额", "代金券或立减优惠金额"]),
        refund_id: cols.find(&["微信退款单号"]),
        out_refund_no: cols.find(&["商户退款单号"]),
        refund: cols.find(&["退款金额"]),
        refund_state: cols.find(&["退款状态"]),
        product: cols.find(&["商品名称"]),
        fee: cols.need(&["手续费"])?,
        order_total: cols.find(&["订单金额"]),
    };
    let mut bill = Bill::default();
    let mut summary_header = None;
    // A summary of zero rows is still a summary: remember that one was read.
    let mut summary_seen = false;
    for (i, line) in lines {
        let line_no = i + 1;
        let bad = |problem: String| BillError::Line {
            line: line_no,
            problem,
        };
        if !line.starts_with('`') {
            if summary_header.is_some() {
                return Err(bad("a second summary header".into()));
            }
            summary_header = Some(Columns(line.split(',').collect()));
            continue;
        }
        let f = fields(line).ok_or_else(|| bad("not a bill row".into()))?;
        if let Some(sh) = &summary_header {
            if summary_seen {
                return Err(bad("a second summary row".into()));
            }
            bill.summary = summary(sh, &f).map_err(bad)?;
            summary_seen = true;
            continue;
        }
        bill.rows.push(at.row(&f).map_err(bad)?);
    }
    if !summary_seen {
        return Err(BillError::NoSummary);
    }
    if bill.summary.rows != bill.rows.len() as u64 {
        return Err(BillError::RowCount {
            said: bill.summary.rows,
            found: bill.rows.len(),
        });
    }
    Ok(bill)
}

struct ColumnsAt {
    trade_time: usize,
    appid: usize,
    mch_id: usize,
    transaction_id: usize,
    out_trade_no: usize,
    trade_type: usize,
    trade_state: usize,
    settlement: usize,
    coupon: Option<usize>,
    refund_id: Option<usize>,
    out_refund_no: Option<usize>,
    refund: Option<usize>,
    refund_state: Option<usize>,
    product: Option<usize>,
    fee: usize,
    order_total: Option<usize>,
}

impl ColumnsAt {
    fn row(&self, f: &[&str]) -> Result<BillRow, String> {
        let text = |i: usize| -> Result<String, String> {
            f.get(i)
                .map(|s| s.trim().to_string())
                .ok_or_else(|| format!("{} fields, column {} missing", f.len(), i + 1))
        };
        let opt =
            |i: Option<usize>| -> Result<String, String> { i.map_or(Ok(String::new()), text) };
        let money = |i: Option<usize>, what: &str| -> Result<Fen, String> {
            let t = opt(i)?;
            yuan(&t).ok_or_else(|| format!("{what} {t:?} is not an amount in yuan"))
        };
        let settlement = money(Some(self.settlement), "应结订单金额")?;
        let fee_text = text(self.fee)?;
        Ok(BillRow {
            trade_time: text(self.trade_time)?,
            appid: text(self.appid)?,
            mch_id: text(self.mch_id)?,
            transaction_id: text(self.transaction_id)?,
            out_trade_no: text(self.out_trade_no)?,
            trade_type: text(self.trade_type)?,
            trade_state: text(self.trade_state)?,
            settlement,
            coupon: money(self.coupon, "代金券金额")?,
            refund_id: normalise_none(opt(self.refund_id)?),
            out_refund_no: normalise_none(opt(self.out_refund_no)?),
            refund: money(self.refund, "退款金额")?,
            refund_state: opt(self.refund_state)?,
            product: opt(self.product)?,
            fee_millifen: fee(&fee_text)
                .ok_or_else(|| format!("手续费 {fee_text:?} is not a fee"))?,
            order_total: match self.order_total {
                Some(_) => money(self.order_total, "订单金额")?,
                None => settlement,
            },
        })
    }
}

/// A payment row writes "0" where it has no refund id.
fn normalise_none(s: String) -> String {
    if s == "0" { String::new() } else { s }
}

fn summary(h: &Columns<'_>, f: &[&str]) -> Result<BillSummary, String> {
    let get = |names: &[&'static str]| -> Result<&str, String> {
        let i = h
            .find(names)
            .ok_or_else(|| format!("the summary has no {} column", names[0]))?;
        f.get(i)
            .map(|s| s.trim())
            .ok_or_else(|| format!("the summary row has no {} field", names[0]))
    };
    let rows = get(&["总交易单数"])?;
    let money = |names: &[&'static str]| -> Result<Fen, String> {
        let t = get(names)?;
        yuan(t).ok_or_else(|| format!("{} {t:?} is not an amount", names[0]))
    };
    let fee_text = get(&["手续费总金额"])?;
    Ok(BillSummary {
        rows: rows
            .parse()
            .map_err(|_| format!("总交易单数 {rows:?} is not a count"))?,
        settlement_total: money(&["应结订单总金额", "总交易额"])?,
        refund_total: money(&["退款总金额", "总退款金额"])?,
        fee_total_millifen: fee(fee_text)
            .ok_or_else(|| format!("手续费总金额 {fee_text:?} is not a fee"))?,
    })
}

fn yuan_text(f: Fen) -> String {
    let v = f.get();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", v.abs() / 100, v.abs() % 100)
}

fn fee_text(millifen: i64) -> String {
    let sign = if millifen < 0 { "-" } else { "" };
    let v = millifen.abs();
    format!("{sign}{}.{:05}", v / 100_000, v % 100_000)
}

/// Writes a bill in the current ALL layout (the simulator's bills).
pub fn render(bill: &Bill) -> String {
    let mut out = ALL_COLUMNS.join(",");
    out.push_str("\r\n");
    let empty_zero = |s: &str| {
        if s.is_empty() {
            "0".to_string()
        } else {
            s.to_string()
        }
    };
    for r in &bill.rows {
        let fields: [String; 27] = [
            r.trade_time.clone(),
            r.appid.clone(),
            r.mch_id.clone(),
            "0".into(),
            String::new(),
            r.transaction_id.clone(),
            r.out_trade_no.clone(),
            String::new(),
            r.trade_type.clone(),
            r.trade_state.clone(),
            "OTHERS".into(),
            "CNY".into(),
            yuan_text(r.settlement),
            yuan_text(r.coupon),
            empty_zero(&r.refund_id),
            empty_zero(&r.out_refund_no),
            yuan_text(r.refund),
            "0.00".into(),
            if r.is_refund() {
                "ORIGINAL".into()
            } else {
                String::new()
            },
            r.refund_state.clone(),
            r.product.clone(),
            String::new(),
            fee_text(r.fee_millifen),
            "0.60%".into(),
            yuan_text(r.order_total),
            yuan_text(r.refund),
            String::new(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('`');
            out.push_str(f);
        }
        out.push_str("\r\n");
    }
    out.push_str(&SUMMARY_COLUMNS.join(","));
    out.push_str("\r\n");
    let s = &bill.summary;
    let summary = [
        s.rows.to_string(),
        yuan_text(s.settlement_total),
        yuan_text(s.refund_total),
        "0.00".into(),
        fee_text(s.fee_total_millifen),
        yuan_text(s.settlement_total),
        yuan_text(s.refund_total),
    ];
    let joined: Vec<String> = summary.iter().map(|f| format!("`{f}")).collect();
    out.push_str(&joined.join(","));
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and first detail row of WxJava's `WxPayBillResultTest` sample
    /// (wxpay-v3-refunds-bills.md §2.4), with a summary for that one row.
    const WXJAVA_SAMPLE: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n\
`2019-07-25 08:35:41,`WWWW,`XXXXXXXX,`0,`,`XXXXXXXXXXXXX,`XXXXXXXXXX,`XXXXXXXXXXX,`JSAPI,`SUCCESS,`PSBC_DEBIT,`CNY,`6.00,`0.00,`0,`0,`0.00,`0.00,`,`,`XXXXXX,`XXXXXXX,`0.04000,`0.60%,`6.00,`0.00,`\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\
`1,`6.00,`0.00,`0.00,`0.04000,`6.00,`0.00\n";

    #[test]
    fn reads_the_published_sample() {
        let bill = parse(WXJAVA_SAMPLE).unwrap();
        assert_eq!(bill.rows.len(), 1);
        let r = &bill.rows[0];
        assert_eq!(r.trade_time, "2019-07-25 08:35:41");
        assert_eq!(r.transaction_id, "XXXXXXXXXXXXX");
        assert_eq!(r.out_trade_no, "XXXXXXXXXX");
        assert_eq!(r.trade_state, "SUCCESS");
        assert_eq!(r.settlement, Fen::new(600));
        assert_eq!(r.fee_millifen, 4000, "0.04000 yuan = 4 fen");
        assert_eq!(r.refund_id, "", "a payment row's 0 means none");
        assert_eq!(r.order_total, Fen::new(600));
        assert_eq!(bill.summary.settlement_total, Fen::new(600));
        assert_eq!(bill.summary.fee_total_millifen, 4000);
    }

    #[test]
    fn reads_the_old_layout_by_name() {
        let old = "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,代金券或立减优惠金额,微信退款单号,商户退款单号,退款金额,代金券或立减优惠退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率\n\
`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0.00000,`0.60%\n\
总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\n\
`1,`0.01,`0.00,`0.00,`0.00000\n";
        let bill = parse(old).unwrap();
        assert_eq!(bill.rows[0].settlement, Fen::new(1));
        assert_eq!(bill.rows[0].product, "被扫支付测试");
        assert_eq!(bill.rows[0].order_total, Fen::new(1));
        assert_eq!(bill.summary.settlement_total, Fen::new(1));
    }

    fn row(i: u32, product: &str) -> BillRow {
        let refund = i.is_multiple_of(3);
        BillRow {
            trade_time: format!("2026-12-01 10:{:02}:00", i % 60),
            appid: "wx2421b1c4370ec43b".into(),
            mch_id: "10000100".into(),
            transaction_id: format!("42000{i:010}"),
            out_trade_no: format!("A20261201-{i}-x"),
            trade_type: "NATIVE".into(),
            trade_state: if refund { "REFUND" } else { "SUCCESS" }.into(),
            settlement: Fen::new(i64::from(i) * 101),
            coupon: Fen::ZERO,
            refund_id: if refund {
                format!("5030{i}")
            } else {
                String::new()
            },
            out_refund_no: if refund {
                format!("R{i}")
            } else {
                String::new()
            },
            refund: if refund { Fen::new(50) } else { Fen::ZERO },
            refund_state: if refund { "SUCCESS" } else { "" }.into(),
            product: product.into(),
            fee_millifen: i64::from(i) * 606,
            order_total: Fen::new(i64::from(i) * 101),
        }
    }

    #[test]
    fn what_the_simulator_writes_reads_back_even_with_commas_and_spaces_in_names() {
        let rows: Vec<BillRow> = (1..=7)
            .map(|i| {
                row(
                    i,
                    ["咖啡店-拿铁", "a, b", "tea  time", "", "x`y"][i as usize % 5],
                )
            })
            .collect();
        let bill = Bill::of(rows);
        let text = render(&bill);
        let back = parse(&text).unwrap();
        assert_eq!(back, bill);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(parse(""), Err(BillError::Empty));
        assert!(matches!(parse("a,b\n"), Err(BillError::MissingColumn(_))));
        let no_summary = WXJAVA_SAMPLE.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(parse(&no_summary), Err(BillError::NoSummary));
        let bad_amount = WXJAVA_SAMPLE.replace("`6.00,`0.00,`0,", "`6.x0,`0.00,`0,");
        assert!(matches!(
            parse(&bad_amount),
            Err(BillError::Line { line: 2, .. })
        ));
        let wrong_count = WXJAVA_SAMPLE.replace("\n`1,`6.00", "\n`2,`6.00");
        assert_eq!(
            parse(&wrong_count),
            Err(BillError::RowCount { said: 2, found: 1 })
        );
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(yuan("12.5"), Some(Fen::new(1250)));
        assert_eq!(yuan("0.01"), Some(Fen::new(1)));
        assert_eq!(yuan("-1.00"), Some(Fen::new(-100)));
        assert_eq!(yuan("1.001"), None);
        assert_eq!(yuan("1e3"), None);
        assert_eq!(fee("0.00600"), Some(600));
        assert_eq!(fee_text(600), "0.00600");
        assert_eq!(yuan_text(Fen::new(5)), "0.05");
    }
}
