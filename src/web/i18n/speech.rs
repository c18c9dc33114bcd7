//! Payments announced aloud (SPEC §10): the sentence a counter's speaker says
//! for an amount, in the shop's language, read the way people say money
//! ("微信收款 十二元五角", "WeChat Pay received twelve yuan fifty"). The browser
//! only speaks what this module wrote.

use crate::config::Language;
use crate::values::money::Fen;

/// What is said when a payment of `amount` comes in.
pub fn announcement(lang: Language, amount: Fen) -> String {
    match lang {
        Language::ZhCn => format!("微信收款 {}", zh_amount(amount)),
        Language::En => format!("WeChat Pay received {}", en_amount(amount)),
    }
}

const ZH_DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
const ZH_PLACES: [&str; 4] = ["", "十", "百", "千"];
const ZH_GROUPS: [&str; 4] = ["", "万", "亿", "万亿"];

/// An amount in Chinese money reading: 元, then 角 and 分, with 零 where a
/// place is skipped between two spoken ones (10.05 → 十元零五分).
pub fn zh_amount(amount: Fen) -> String {
    let fen = amount.get().unsigned_abs();
    let (yuan, jiao, fen) = (fen / 100, (fen / 10) % 10, fen % 10);
    let mut s = String::new();
    if yuan > 0 {
        s.push_str(&zh_number(yuan));
        s.push('元');
    }
    if jiao > 0 {
        s.push_str(ZH_DIGITS[jiao as usize]);
        s.push('角');
    }
    if fen > 0 {
        if yuan > 0 && jiao == 0 {
            s.push('零');
        }
        s.push_str(ZH_DIGITS[fen as usize]);
        s.push('分');
    }
    if s.is_empty() {
        s.push_str("零元");
    }
    s
}

/// A whole number in Chinese: groups of four digits (万, 亿), 零 for skipped
/// places inside and between groups, and 十 rather than 一十 at the start.
pub fn zh_number(n: u64) -> String {
    if n == 0 {
        return ZH_DIGITS[0].to_string();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 10_000);
        rest /= 10_000;
    }
    let mut s = String::new();
    for (i, &g) in groups.iter().enumerate().rev() {
        if g == 0 {
            continue;
        }
        // A group below a thousand after a spoken one skips a place: 十万零五十.
        if !s.is_empty() && g < 1000 {
            s.push('零');
        }
        s.push_str(&zh_group(g));
        s.push_str(ZH_GROUPS[i.min(ZH_GROUPS.len() - 1)]);
    }
    match s.strip_prefix("一十") {
        Some(tail) => format!("十{tail}"),
        None => s,
    }
}

/// One group of up to four digits; zeros before its first digit are the caller's.
fn zh_group(g: u64) -> String {
    let mut s = String::new();
    let mut zero = false;
    for place in (0..4).rev() {
        let d = (g / 10u64.pow(place)) % 10;
        if d == 0 {
            zero = !s.is_empty();
            continue;
        }
        if zero {
            s.push('零');
            zero = false;
        }
        s.push_str(ZH_DIGITS[d as usize]);
        s.push_str(ZH_PLACES[place as usize]);
    }
    s
}

/// An amount in English: "twelve yuan fifty", "ten yuan and five fen", "one fen".
pub fn en_amount(amount: Fen) -> String {
    let fen = amount.get().unsigned_abs();
    let (yuan, fen) = (fen / 100, fen % 100);
    match (yuan, fen) {
        (0, 0) => "zero yuan".into(),
        (0, f) => format!("{} fen", en_number(f)),
        (y, 0) => format!("{} yuan", en_number(y)),
        (y, f) if f < 10 => format!("{} yuan and {} fen", en_number(y), en_number(f)),
        (y, f) => format!("{} yuan {}", en_number(y), en_number(f)),
    }
}

const EN_SMALL: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const EN_SCALES: [&str; 5] = ["", " thousand", " million", " billion", " trillion"];

/// A whole number in English words, American style ("one hundred one").
pub fn en_number(n: u64) -> String {
    if n == 0 {
        return EN_SMALL[0].into();
    }
    let mut parts = Vec::new();
    let mut rest = n;
    let mut scale = 0;
    while rest > 0 {
        let g = rest % 1000;
        if g > 0 {
            parts.push(format!(
                "{}{}",
                en_below_thousand(g),
                EN_SCALES[scale.min(4)]
            ));
        }
        rest /= 1000;
        scale += 1;
    }
    parts.reverse();
    parts.join(" ")
}

fn en_below_thousand(n: u64) -> String {
    let (h, r) = (n / 100, n % 100);
    let tail = match r {
        0 => String::new(),
        1..=19 => EN_SMALL[r as usize].into(),
        _ if r % 10 == 0 => EN_TENS[(r / 10) as usize].into(),
        _ => format!(
            "{}-{}",
            EN_TENS[(r / 10) as usize],
            EN_SMALL[(r % 10) as usize]
        ),
    };
    match (h, tail.is_empty()) {
        (0, _) => tail,
        (h, true) => format!("{} hundred", EN_SMALL[h as usize]),
        (h, false) => format!("{} hundred {tail}", EN_SMALL[h as usize]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TABLE: &[(i64, &str, &str)] = &[
        (1, "一分", "one fen"),
        (10, "一角", "ten fen"),
        (15, "一角五分", "fifteen fen"),
        (100, "一元", "one yuan"),
        (1000, "十元", "ten yuan"),
        (1005, "十元零五分", "ten yuan and five fen"),
        (1250, "十二元五角", "twelve yuan fifty"),
        (1205, "十二元零五分", "twelve yuan and five fen"),
        (10000, "一百元", "one hundred yuan"),
        (10100, "一百零一元", "one hundred one yuan"),
        (11000, "一百一十元", "one hundred ten yuan"),
        (100001, "一千元零一分", "one thousand yuan and one fen"),
        (100500, "一千零五元", "one thousand five yuan"),
        (1000000, "一万元", "ten thousand yuan"),
        (1010000, "一万零一百元", "ten thousand one hundred yuan"),
        (
            1234567,
            "一万二千三百四十五元六角七分",
            "twelve thousand three hundred forty-five yuan sixty-seven",
        ),
        (10000000, "十万元", "one hundred thousand yuan"),
        (10005000, "十万零五十元", "one hundred thousand fifty yuan"),
        (15000000, "十五万元", "one hundred fifty thousand yuan"),
        (100000000, "一百万元", "one million yuan"),
        (10000000000, "一亿元", "one hundred million yuan"),
        (
            10000010000,
            "一亿零一百元",
            "one hundred million one hundred yuan",
        ),
        (
            10001000000,
            "一亿零一万元",
            "one hundred million ten thousand yuan",
        ),
        (100000000000, "十亿元", "one billion yuan"),
    ];

    #[test]
    fn amounts_are_read_as_people_say_them() {
        for &(fen, zh, en) in TABLE {
            assert_eq!(zh_amount(Fen::new(fen)), zh, "zh for {fen} fen");
            assert_eq!(en_amount(Fen::new(fen)), en, "en for {fen} fen");
        }
    }

    #[test]
    fn the_announcement_names_wechat_pay_in_the_shops_language() {
        assert_eq!(
            announcement(Language::ZhCn, Fen::new(1250)),
            "微信收款 十二元五角"
        );
        assert_eq!(
            announcement(Language::En, Fen::new(1250)),
            "WeChat Pay received twelve yuan fifty"
        );
    }

    /// Reads a Chinese number back, to check the reading says the number.
    fn zh_value(s: &str) -> u64 {
        let digit = |c| {
            ZH_DIGITS
                .iter()
                .position(|d| d.starts_with(c))
                .map(|d| d as u64)
        };
        let (mut total, mut group, mut d) = (0u64, 0u64, 0u64);
        for c in s.chars() {
            match c {
                '零' => {}
                '十' => {
                    group += if d == 0 { 1 } else { d } * 10;
                    d = 0;
                }
                '百' => (group, d) = (group + d * 100, 0),
                '千' => (group, d) = (group + d * 1000, 0),
                '万' => (total, group, d) = (total + (group + d) * 10_000, 0, 0),
                '亿' => (total, group, d) = ((total + group + d) * 100_000_000, 0, 0),
                c => d = digit(c).expect("a digit"),
            }
        }
        total + group + d
    }

    proptest! {
        #[test]
        fn every_chinese_reading_says_its_number(n in 1u64..1_000_000_000_000) {
            let s = zh_number(n);
            prop_assert_eq!(zh_value(&s), n, "{}", s);
            prop_assert!(!s.contains("零零"), "{}", s);
            prop_assert!(!s.ends_with('零'), "{}", s);
            prop_assert!(!s.starts_with("一十"), "{}", s);
        }
    }
}
