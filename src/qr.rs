//! `code_url` → PNG: a 1-bit, crisp QR with its quiet zone. Pure.

use image::{ImageEncoder, Luma};
use qrcode::{EcLevel, QrCode};

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

/// Renders `text` as a PNG at least `size` pixels wide (whole pixels per module, so it stays sharp).
pub fn render_png(text: &str, size: u32) -> Result<Vec<u8>, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|_| QrError::TooLong)?;
    let img = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .min_dimensions(size, size)
        .build();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_decodable_png() {
        let url = "weixin://wxpay/bizpayurl?pr=abc123XYZ0";
        let png = render_png(url, DEFAULT_SIZE).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert!(img.width() >= DEFAULT_SIZE);
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, url);
    }

    #[test]
    fn sizes_are_clamped() {
        assert_eq!(clamp_size(None), DEFAULT_SIZE);
        assert_eq!(clamp_size(Some(1)), MIN_SIZE);
        assert_eq!(clamp_size(Some(100_000)), MAX_SIZE);
    }
}

/// Each QR rendered once per size and served from memory afterwards.
#[derive(Default)]
pub struct QrCache {
    map: std::sync::Mutex<std::collections::HashMap<(String, u32), bytes::Bytes>>,
}

/// Enough for every open order's QR at a couple of sizes; beyond it the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

impl QrCache {
    pub fn get_or_render(&self, code_url: &str, size: u32) -> Result<bytes::Bytes, QrError> {
        let key = (code_url.to_string(), size);
        if let Some(png) = self.map.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(png.clone());
        }
        let png = bytes::Bytes::from(render_png(code_url, size)?);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_ENTRIES {
            map.clear();
        }
        map.insert(key, png.clone());
        Ok(png)
    }
}
