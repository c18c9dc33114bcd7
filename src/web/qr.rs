//! `code_url` → PNG: a 1-bit, crisp QR with its quiet zone (`render`, pure), and
//! `QrCache`, which serves each scannable QR from memory until its order changes.

use image::{ImageEncoder, Luma};
use qrcode::{EcLevel, QrCode};

use crate::base::lock::LockExt;

pub const DEFAULT_SIZE: u32 = 320;
pub const MIN_SIZE: u32 = 128;
pub const MAX_SIZE: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code")]
    TooLong,
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

pub fn clamp_size(requested: Option<u32>) -> u32 {
    requested.unwrap_or(DEFAULT_SIZE).clamp(MIN_SIZE, MAX_SIZE)
}

/// Renders `text` as a PNG of exactly `size` × `size` pixels: whole pixels per
/// module (so it stays sharp), the largest that fit, centred on white. Only a
/// code too dense for one pixel per module comes out larger.
pub fn render_png(text: &str, size: u32) -> Result<Vec<u8>, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrError::TooLong)?;
    let modules = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .max_dimensions(size, size)
        .build();
    let img = if modules.width() < size || modules.height() < size {
        let mut canvas = image::ImageBuffer::from_pixel(size, size, Luma([255u8]));
        let x = i64::from((size - modules.width().min(size)) / 2);
        let y = i64::from((size - modules.height().min(size)) / 2);
        image::imageops::overlay(&mut canvas, &modules, x, y);
        canvas
    } else {
        modules
    };
    let mut out = Vec::with_capacity(4096);
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::NoFilter,
    )
    .write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::L8,
    )
    .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

/// The QR images served from memory: each QR rendered once per size, and for
/// each order token the QR it can be scanned with, so the hot `qr.png` path
/// answers without the database. Entries for a token are forgotten when the
/// hub publishes a change of that order (see `startup.rs`).
#[derive(Default)]
pub struct QrCache {
    maps: std::sync::Mutex<Maps>,
    /// Bumped by every `forget`: a database read that started before a change
    /// must not be remembered after it.
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Maps {
    /// token → its scannable QR, as last read from the database.
    current: std::collections::HashMap<String, Scannable>,
    /// code_url → PNG per size.
    pngs: std::collections::HashMap<String, Vec<(u32, bytes::Bytes)>>,
}

/// An order's current, scannable QR.
#[derive(Debug, Clone)]
pub struct Scannable {
    pub out_trade_no: String,
    pub code_url: String,
}

/// Enough for every open order's QR at a couple of sizes; beyond it the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

impl QrCache {
    /// The order's scannable QR and its PNG at `size`, if both are in memory.
    pub fn cached(&self, token: &str, size: u32) -> Option<(String, bytes::Bytes)> {
        let maps = self.maps.lock_or_recover();
        let qr = maps.current.get(token)?;
        let png = maps
            .pngs
            .get(&qr.code_url)?
            .iter()
            .find(|(s, _)| *s == size)?
            .1
            .clone();
        Some((qr.out_trade_no.clone(), png))
    }

    /// Call before reading the order from the database; pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps what the database said, unless the order may have changed since `seen`.
    pub fn remember(&self, token: &str, qr: Scannable, seen: u64) {
        let mut maps = self.maps.lock_or_recover();
        // Read under the lock `forget` takes, so no forget slips in between.
        if self.generation() != seen {
            return;
        }
        if maps.current.len() >= CACHE_ENTRIES {
            maps.current.clear();
        }
        maps.current.insert(token.to_string(), qr);
    }

    /// The order changed: its QR must be read from the database again.
    pub fn forget(&self, token: &str) {
        let mut maps = self.maps.lock_or_recover();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        maps.current.remove(token);
    }

    pub fn get_or_render(&self, code_url: &str, size: u32) -> Result<bytes::Bytes, QrError> {
        let found = |maps: &Maps| {
            maps.pngs
                .get(code_url)
                .and_then(|v| v.iter().find(|(s, _)| *s == size))
                .map(|(_, png)| png.clone())
        };
        if let Some(png) = found(&self.maps.lock_or_recover()) {
            return Ok(png);
        }
        // Rendered outside the lock: two first requests may both render, which is harmless.
        let png = bytes::Bytes::from(render_png(code_url, size)?);
        let mut maps = self.maps.lock_or_recover();
        if maps.pngs.len() >= CACHE_ENTRIES {
            maps.pngs.clear();
        }
        let sizes = maps.pngs.entry(code_url.to_string()).or_default();
        if !sizes.iter().any(|(s, _)| *s == size) {
            sizes.push((size, png.clone()));
        }
        Ok(png)
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn qr() -> Scannable {
        Scannable {
            out_trade_no: "A-1-x".into(),
            code_url: "weixin://wxpay/bizpayurl?pr=abc".into(),
        }
    }

    #[test]
    fn a_remembered_qr_is_served_until_its_order_changes() {
        let c = QrCache::default();
        let png = c.get_or_render(&qr().code_url, DEFAULT_SIZE).unwrap();
        c.remember("tok", qr(), c.generation());
        let (otn, cached) = c.cached("tok", DEFAULT_SIZE).unwrap();
        assert_eq!(otn, "A-1-x");
        assert_eq!(cached, png);
        assert!(
            c.cached("tok", MAX_SIZE).is_none(),
            "other sizes render first"
        );
        c.forget("tok");
        assert!(c.cached("tok", DEFAULT_SIZE).is_none());
    }

    #[test]
    fn a_read_overtaken_by_a_change_is_not_remembered() {
        let c = QrCache::default();
        c.get_or_render(&qr().code_url, DEFAULT_SIZE).unwrap();
        let seen = c.generation();
        c.forget("tok"); // the order changed while the request read the database
        c.remember("tok", qr(), seen);
        assert!(c.cached("tok", DEFAULT_SIZE).is_none());
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    #[test]
    fn renders_a_decodable_png() {
        let url = "weixin://wxpay/bizpayurl?pr=abc123XYZ0";
        let png = render_png(url, DEFAULT_SIZE).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.width(), DEFAULT_SIZE);
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, url);
    }

    #[test]
    fn a_size_is_that_many_pixels_and_still_scans() {
        let url = "weixin://wxpay/bizpayurl?pr=abc123XYZ0";
        for size in [MIN_SIZE, 200, 333, DEFAULT_SIZE, 777, MAX_SIZE] {
            let png = render_png(url, size).unwrap();
            let img = image::load_from_memory(&png).unwrap().to_luma8();
            assert_eq!((img.width(), img.height()), (size, size), "size={size}");
            let mut prepared = rqrr::PreparedImage::prepare(img);
            let grids = prepared.detect_grids();
            assert_eq!(grids.len(), 1, "size={size}");
            assert_eq!(grids[0].decode().unwrap().1, url, "size={size}");
        }
    }

    #[test]
    fn sizes_are_clamped() {
        assert_eq!(clamp_size(None), DEFAULT_SIZE);
        assert_eq!(clamp_size(Some(1)), MIN_SIZE);
        assert_eq!(clamp_size(Some(100_000)), MAX_SIZE);
    }
}
