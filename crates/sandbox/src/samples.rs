//! The files the sandbox's customers send: a real picture and a real PDF, small but whole, so
//! that what wabridge fetches, keeps and serves can be looked at in a browser (a demo's
//! customer photo is a picture, not a pixel). Built here without an image or PDF library.

/// A 240×160 PNG: a sky over a hill with a sun.
pub fn picture() -> Vec<u8> {
    const W: u32 = 240;
    const H: u32 = 160;
    let mut raw = Vec::with_capacity(((W * 3 + 1) * H) as usize);
    for y in 0..H {
        raw.push(0); // the row's filter: none
        for x in 0..W {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let hill = 110.0 - 30.0 * ((fx / 240.0) * std::f64::consts::PI).sin();
            let sun = (fx - 180.0).powi(2) + (fy - 40.0).powi(2) < 18.0_f64.powi(2);
            let rgb = if fy > hill {
                [34, 139 - (fy - hill) as u8 / 2, 84]
            } else if sun {
                [250, 204, 21]
            } else {
                let t = fy / hill;
                [(125.0 + 90.0 * t) as u8, (180.0 + 50.0 * t) as u8, 240]
            };
            raw.extend_from_slice(&rgb);
        }
    }
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&W.to_be_bytes());
    header.extend_from_slice(&H.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter set, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A one-page PDF that says what it is.
pub fn document() -> Vec<u8> {
    let text = "BT /F1 18 Tf 56 760 Td (Beispieldokument - Sandbox) Tj ET\nBT /F1 11 Tf 56 736 Td (Ein Kunde hat dieses Dokument geschickt.) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1));
    for offset in offsets {
        pdf.push_str(&format!("{offset:010} 00000 n \n"));
    }
    pdf.push_str(&format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1));
    pdf.into_bytes()
}

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksums_are_the_standard_ones() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        // zlib's Adler-32 of "Wikipedia".
        assert_eq!(&zlib_stored(b"Wikipedia")[b"Wikipedia".len() + 7..], &0x11E6_0398u32.to_be_bytes());
    }

    #[test]
    fn the_picture_is_a_whole_png_and_the_document_a_whole_pdf() {
        let png = picture();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[16..24], &[0, 0, 0, 240, 0, 0, 0, 160]);
        assert_eq!(&png[png.len() - 12..], &[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
        let pdf = String::from_utf8(document()).unwrap();
        assert!(pdf.starts_with("%PDF-1.4") && pdf.ends_with("%%EOF\n"));
        // The cross-reference table points at each object.
        let xref_at: usize = pdf.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(pdf[xref_at..].starts_with("xref\n0 6\n"));
        for (i, line) in pdf[xref_at..].lines().skip(3).take(5).enumerate() {
            let at: usize = line[..10].parse().unwrap();
            assert!(pdf[at..].starts_with(&format!("{} 0 obj", i + 1)), "object {}", i + 1);
        }
    }
}
