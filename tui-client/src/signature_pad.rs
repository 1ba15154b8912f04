//! The household's signature drawn on the device: strokes kept as vectors and rendered
//! to a PNG whose SHA-256 the helper's record signature covers.
//!
//! The pad knows nothing about terminals: a UI feeds it points in pad coordinates (for
//! the terminal UI, one point per character cell from mouse or touch drag events), and
//! another front end (a touch screen) can feed it finer ones.

use image::{GrayImage, Luma};
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

/// A point on the pad, in pad units (the terminal UI uses character cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    pub x: u16,
    pub y: u16,
}

/// Strokes drawn on a pad of `width × height` units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignaturePad {
    pub width: u16,
    pub height: u16,
    pub strokes: Vec<Vec<Point>>,
    #[serde(skip)]
    drawing: bool,
}

/// Pixels per pad unit when rendering: a terminal cell is about twice as tall as wide.
const CELL_PX: (u32, u32) = (12, 24);
/// Pen radius in pixels.
const PEN: i64 = 3;

impl SignaturePad {
    /// An empty pad.
    pub fn new(width: u16, height: u16) -> Self {
        SignaturePad {
            width,
            height,
            strokes: Vec::new(),
            drawing: false,
        }
    }

    /// Starts a stroke (mouse button down). Points outside the pad are ignored.
    pub fn press(&mut self, x: u16, y: u16) {
        if self.contains(x, y) {
            self.strokes.push(vec![Point { x, y }]);
            self.drawing = true;
        }
    }

    /// Continues the current stroke (drag); starts one if the pen entered the pad.
    pub fn drag(&mut self, x: u16, y: u16) {
        if !self.contains(x, y) {
            return;
        }
        match self.strokes.last_mut() {
            Some(stroke) if self.drawing => {
                if stroke.last() != Some(&Point { x, y }) {
                    stroke.push(Point { x, y });
                }
            }
            _ => self.press(x, y),
        }
    }

    /// Ends the current stroke (mouse button up).
    pub fn release(&mut self) {
        self.drawing = false;
    }

    /// Removes the last stroke.
    pub fn undo(&mut self) {
        self.strokes.pop();
        self.drawing = false;
    }

    /// Removes every stroke.
    pub fn clear(&mut self) {
        self.strokes.clear();
        self.drawing = false;
    }

    /// Number of points drawn: a signature needs more than a dot or two.
    pub fn point_count(&self) -> usize {
        self.strokes.iter().map(Vec::len).sum()
    }

    /// Whether a point is on the pad.
    pub fn contains(&self, x: u16, y: u16) -> bool {
        x < self.width && y < self.height
    }

    /// Whether the pad has a mark at cell `(x, y)` (for drawing it in a terminal).
    pub fn covers(&self, x: u16, y: u16) -> bool {
        self.strokes.iter().any(|s| {
            s.iter().any(|p| p.x == x && p.y == y)
                || s.windows(2)
                    .any(|w| segment_cells(w[0], w[1]).any(|p| p.x == x && p.y == y))
        })
    }

    /// Every cell the strokes pass through, for rendering on a grid.
    pub fn cells(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for s in &self.strokes {
            if let [only] = s.as_slice() {
                out.push(*only);
            }
            for w in s.windows(2) {
                out.extend(segment_cells(w[0], w[1]));
            }
        }
        out.sort_by_key(|p| (p.y, p.x));
        out.dedup();
        out
    }

    /// Renders black strokes on white as a grayscale PNG.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        if self.point_count() < 3 {
            return Err(ClientError::Refused(
                "the signature pad is empty: the household must sign first".into(),
            ));
        }
        let (w, h) = (
            u32::from(self.width.max(1)) * CELL_PX.0,
            u32::from(self.height.max(1)) * CELL_PX.1,
        );
        let mut img = GrayImage::from_pixel(w, h, Luma([255]));
        let centre = |p: Point| {
            (
                i64::from(p.x) * i64::from(CELL_PX.0) + i64::from(CELL_PX.0) / 2,
                i64::from(p.y) * i64::from(CELL_PX.1) + i64::from(CELL_PX.1) / 2,
            )
        };
        for s in &self.strokes {
            if let [only] = s.as_slice() {
                let (x, y) = centre(*only);
                stamp(&mut img, x, y);
            }
            for pair in s.windows(2) {
                let (a, b) = (centre(pair[0]), centre(pair[1]));
                let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).max(1);
                for i in 0..=steps {
                    stamp(
                        &mut img,
                        a.0 + (b.0 - a.0) * i / steps,
                        a.1 + (b.1 - a.1) * i / steps,
                    );
                }
            }
        }
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(|e| ClientError::Refused(format!("cannot render the signature: {e}")))?;
        Ok(out)
    }
}

fn stamp(img: &mut GrayImage, cx: i64, cy: i64) {
    for dy in -PEN..=PEN {
        for dx in -PEN..=PEN {
            if dx * dx + dy * dy <= PEN * PEN {
                let (x, y) = (cx + dx, cy + dy);
                if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                    img.put_pixel(x as u32, y as u32, Luma([0]));
                }
            }
        }
    }
}

/// Cells on the straight segment from `a` to `b` (both ends included).
fn segment_cells(a: Point, b: Point) -> impl Iterator<Item = Point> {
    let (ax, ay, bx, by) = (
        i32::from(a.x),
        i32::from(a.y),
        i32::from(b.x),
        i32::from(b.y),
    );
    let steps = (bx - ax).abs().max((by - ay).abs()).max(1);
    (0..=steps).map(move |i| {
        let x = ax + (bx - ax) * i / steps;
        let y = ay + (by - ay) * i / steps;
        Point {
            x: x.max(0) as u16,
            y: y.max(0) as u16,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strokes_render_to_a_png_with_ink_where_drawn() {
        let mut pad = SignaturePad::new(20, 6);
        pad.press(1, 1);
        pad.drag(5, 1);
        pad.drag(5, 4);
        pad.release();
        pad.drag(30, 30); // outside: ignored
        let png = pad.to_png().unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (240, 144));
        assert_eq!(
            img.get_pixel(3 * 12 + 6, 24 + 12).0,
            [0],
            "ink along the first segment"
        );
        assert_eq!(img.get_pixel(200, 130).0, [255], "paper elsewhere");
        assert!(pad.covers(3, 1) && pad.covers(5, 3) && !pad.covers(10, 3));
    }

    #[test]
    fn an_empty_pad_is_refused() {
        let mut pad = SignaturePad::new(10, 5);
        pad.press(1, 1);
        assert!(pad.to_png().is_err());
        pad.clear();
        assert_eq!(pad.point_count(), 0);
    }

    #[test]
    fn same_strokes_same_bytes() {
        let mut a = SignaturePad::new(10, 5);
        a.press(0, 0);
        a.drag(9, 4);
        a.drag(0, 4);
        let b = a.clone();
        assert_eq!(a.to_png().unwrap(), b.to_png().unwrap());
    }
}
