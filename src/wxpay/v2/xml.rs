//! The one codec for WeChat Pay's flat `<xml><field>value</field>…</xml>` messages.
//!
//! The reader accepts CDATA and plain text (with the five predefined entities and
//! character references), refuses any DOCTYPE (and so every custom entity: XXE,
//! entity bombs), nested elements, duplicate fields and oversized input, and never
//! panics. The writer is the only place XML is produced.

use std::fmt;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Largest message accepted (real ones are well under 4 KiB).
pub const MAX_XML_BYTES: usize = 64 * 1024;
/// Most fields accepted in one message.
pub const MAX_FIELDS: usize = 200;
const MAX_NAME_LEN: usize = 64;

/// The fields of one message, in document order. `Debug` hides the signature.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
        self
    }

    /// Sets `key` when `value` is `Some`.
    pub fn set_opt(&mut self, key: &str, value: Option<impl Into<String>>) -> &mut Self {
        if let Some(v) = value {
            self.set(key, v);
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value when present and not empty (empty fields mean "absent" in this protocol).
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut f = Fields::new();
        for (k, v) in iter {
            f.set(k, v);
        }
        f
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            if k == "sign" {
                m.entry(&k, &"[REDACTED]");
            } else {
                m.entry(&k, &v);
            }
        }
        m.finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the message is empty")]
    Empty,
    #[error("the message is larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    #[error("the message is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    #[error("the root element must be <xml>")]
    NoRoot,
    #[error("nested element inside field <{0}>")]
    Nested(String),
    #[error("field <{0}> appears twice")]
    Duplicate(String),
    #[error("more than {MAX_FIELDS} fields")]
    TooManyFields,
    #[error("invalid field name")]
    BadName,
    #[error("unknown entity &{0};")]
    Entity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// Reads one flat `<xml>` message.
pub fn from_xml(input: &[u8]) -> Result<Fields, XmlError> {
    if input.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(XmlError::Empty);
    }
    let mut reader = Reader::from_str(text);
    let malformed = |e: quick_xml::Error| XmlError::Malformed(e.to_string());

    // Prolog: declaration, comments and whitespace until <xml>.
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.trim().is_empty() => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(s) if s.name().0 == "xml" => break,
            Event::Empty(s) if s.name().0 == "xml" => {
                return check_epilog(&mut reader, Fields::new());
            }
            _ => return Err(XmlError::NoRoot),
        }
    }

    let mut fields = Fields::new();
    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Start(s) => {
                let name = s.name().0.to_string();
                if !valid_name(&name) {
                    return Err(XmlError::BadName);
                }
                let value = read_value(&mut reader, &name)?;
                push_field(&mut fields, name, value)?;
            }
            Event::Empty(s) => {
                let name = s.name().0.to_string();
                if !valid_name(&name) {
                    return Err(XmlError::BadName);
                }
                push_field(&mut fields, name, String::new())?;
            }
            Event::End(_) => break, // </xml>: end names are checked by the reader
            Event::Text(t) if t.trim().is_empty() => {}
            Event::Comment(_) => {}
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Eof => return Err(XmlError::Malformed("unexpected end".into())),
            _ => return Err(XmlError::Malformed("text outside a field".into())),
        }
    }
    check_epilog(&mut reader, fields)
}

fn push_field(fields: &mut Fields, name: String, value: String) -> Result<(), XmlError> {
    if fields.get(&name).is_some() {
        return Err(XmlError::Duplicate(name));
    }
    if fields.len() >= MAX_FIELDS {
        return Err(XmlError::TooManyFields);
    }
    fields.0.push((name, value));
    Ok(())
}

fn read_value(reader: &mut Reader<&[u8]>, name: &str) -> Result<String, XmlError> {
    let mut value = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?
        {
            Event::Text(t) => value.push_str(&t.xml10_content()),
            Event::CData(c) => value.push_str(&c),
            Event::GeneralRef(r) => {
                let resolved = r
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                match resolved {
                    Some(ch) => value.push(ch),
                    None => {
                        let ent = r.into_inner();
                        match quick_xml::escape::resolve_xml_entity(&ent) {
                            Some(s) => value.push_str(s),
                            None => return Err(XmlError::Entity(ent.into_owned())),
                        }
                    }
                }
            }
            Event::Comment(_) => {}
            Event::End(_) => return Ok(value),
            Event::Start(_) | Event::Empty(_) => return Err(XmlError::Nested(name.to_string())),
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Eof => return Err(XmlError::Malformed("unexpected end".into())),
            Event::Decl(_) | Event::PI(_) => {
                return Err(XmlError::Malformed("unexpected declaration".into()));
            }
        }
    }
}

fn check_epilog(reader: &mut Reader<&[u8]>, fields: Fields) -> Result<Fields, XmlError> {
    loop {
        match reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?
        {
            Event::Eof => return Ok(fields),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.trim().is_empty() => {}
            _ => return Err(XmlError::Malformed("content after </xml>".into())),
        }
    }
}

/// Writes a message: numbers as plain text, everything else as CDATA
/// (a `]]>` inside a value is split across two CDATA sections).
pub fn to_xml(fields: &Fields) -> String {
    let mut out = String::with_capacity(64 + fields.len() * 48);
    out.push_str("<xml>");
    for (k, v) in fields.iter() {
        debug_assert!(valid_name(k), "field names are ours: {k:?}");
        out.push('<');
        out.push_str(k);
        out.push('>');
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(v);
        } else {
            out.push_str("<![CDATA[");
            out.push_str(&v.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(k);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_cdata_and_plain_text() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<xml>
  <return_code><![CDATA[SUCCESS]]></return_code>
  <total_fee>101</total_fee>
  <attach><![CDATA[]]></attach>
  <body>a &amp; b &lt;c&gt; &#x4e2d;&#25991;</body>
  <empty/>
</xml>"#;
        let f = from_xml(xml).unwrap();
        assert_eq!(f.get("return_code"), Some("SUCCESS"));
        assert_eq!(f.get("total_fee"), Some("101"));
        assert_eq!(f.get("attach"), Some(""));
        assert_eq!(f.get("body"), Some("a & b <c> 中文"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.len(), 5);
    }

    #[test]
    fn refuses_hostile_and_broken_input() {
        type Case = (&'static [u8], fn(&XmlError) -> bool);
        let cases: Vec<Case> = vec![
            (
                br#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>"#,
                |e| matches!(e, XmlError::Doctype),
            ),
            (
                br#"<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><xml><a>&lol2;</a></xml>"#,
                |e| matches!(e, XmlError::Doctype),
            ),
            (b"<xml><a>&xxe;</a></xml>", |e| matches!(e, XmlError::Entity(_))),
            (b"<xml><a><b>1</b></a></xml>", |e| matches!(e, XmlError::Nested(_))),
            (b"<xml><a>1</a><a>2</a></xml>", |e| matches!(e, XmlError::Duplicate(_))),
            (b"<root><a>1</a></root>", |e| matches!(e, XmlError::NoRoot)),
            (b"<xml><a>1</a>", |e| matches!(e, XmlError::Malformed(_))),
            (b"<xml><a>1</b></xml>", |e| matches!(e, XmlError::Malformed(_))),
            (b"<xml>junk<a>1</a></xml>", |e| matches!(e, XmlError::Malformed(_))),
            (b"<xml></xml><xml></xml>", |e| matches!(e, XmlError::Malformed(_))),
            (b"\xff\xfe<xml/>", |e| matches!(e, XmlError::NotUtf8)),
            (b"", |e| matches!(e, XmlError::Empty)),
            (b"not xml at all", |e| matches!(e, XmlError::NoRoot)),
        ];
        for (input, ok) in cases {
            let err = from_xml(input).expect_err(&String::from_utf8_lossy(input));
            assert!(
                ok(&err),
                "{:?} gave {err:?}",
                String::from_utf8_lossy(input)
            );
        }
        let huge = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_XML_BYTES));
        assert_eq!(from_xml(huge.as_bytes()), Err(XmlError::TooLarge));
        let many: String = (0..=MAX_FIELDS)
            .map(|i| format!("<f{i}>1</f{i}>"))
            .collect();
        assert_eq!(
            from_xml(format!("<xml>{many}</xml>").as_bytes()),
            Err(XmlError::TooManyFields)
        );
    }

    #[test]
    fn writes_numbers_plain_and_text_as_cdata() {
        let f: Fields = [("total_fee", "1"), ("body", "a]]>b"), ("x", "")]
            .into_iter()
            .collect();
        assert_eq!(
            to_xml(&f),
            "<xml><total_fee>1</total_fee><body><![CDATA[a]]]]><![CDATA[>b]]></body><x><![CDATA[]]></x></xml>"
        );
    }

    #[test]
    fn debug_hides_the_signature() {
        let f: Fields = [("sign", "ABCDEF0123"), ("a", "b")].into_iter().collect();
        let s = format!("{f:?}");
        assert!(!s.contains("ABCDEF0123"));
        assert!(s.contains("REDACTED"));
    }

    fn field_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,20}"
    }

    // Any character XML 1.0 can carry, with a bias to the dangerous ones.
    fn field_value() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("]]>".to_string()),
                Just("<".to_string()),
                Just("&".to_string()),
                Just("&amp;".to_string()),
                Just("中文".to_string()),
                Just("\t\n".to_string()),
                "[\\PC]{0,8}",
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(
            entries in prop::collection::btree_map(field_name(), field_value(), 0..20)
        ) {
            let fields: Fields = entries.into_iter().collect();
            let back = from_xml(to_xml(&fields).as_bytes()).unwrap();
            prop_assert_eq!(back, fields);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = from_xml(&bytes);
        }

        #[test]
        fn never_panics_on_xmlish_text(s in "(<|>|/|xml|a|!|\\[|CDATA|\\]|&|;|#|x|0|DOCTYPE|\\?| |\"|=)*") {
            let _ = from_xml(s.as_bytes());
        }
    }
}
