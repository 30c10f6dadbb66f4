//! The files the sandbox's customers send — a picture, a sticker, a voice note, a video and a
//! PDF — small but whole, in the formats Meta delivers them (PNG, WebP, Ogg Opus, MP4 with
//! H.264, PDF), so that what wabridge fetches, keeps and serves can be looked at, played and
//! opened in a browser (a demo's customer photo is a picture, not a pixel). Built here without
//! an image, audio, video or PDF library: the formats' simplest valid encodings (an
//! uncompressed deflate stream, a lossless WebP of a few colours, silent Opus frames, H.264
//! macroblocks of raw samples).

/// A 240×160 PNG: a sky over a hill with a sun.
pub fn picture() -> Vec<u8> {
    const W: u32 = 240;
    const H: u32 = 160;
    let mut raw = Vec::with_capacity(((W * 3 + 1) * H) as usize);
    for y in 0..H {
        raw.push(0); // the row's filter: none
        for x in 0..W {
            raw.extend_from_slice(&landscape(f64::from(x) / f64::from(W), f64::from(y) / f64::from(H), 0.75, 1.5));
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

/// The picture's and the video's scene at (`x`, `y`) in [0, 1): sky, a hill, and the sun at
/// `sun` across, round in a frame of this `aspect` (width / height).
fn landscape(x: f64, y: f64, sun: f64, aspect: f64) -> [u8; 3] {
    let hill = 0.6875 - 0.1875 * (x * std::f64::consts::PI).sin();
    if y > hill {
        [34, (139.0 - (y - hill) * 80.0) as u8, 84]
    } else if ((x - sun) * aspect).powi(2) + (y - 0.25).powi(2) < 0.1125_f64.powi(2) {
        [250, 204, 21]
    } else {
        let t = y / hill;
        [(125.0 + 90.0 * t) as u8, (180.0 + 50.0 * t) as u8, 240]
    }
}

/// A 512×512 sticker as WhatsApp's are (WebP, transparent around): a smiling face. Lossless
/// WebP (VP8L) with no transform and, since each channel takes at most two values, a one-bit
/// prefix code per channel.
pub fn sticker() -> Vec<u8> {
    const SIZE: u32 = 512;
    // [alpha, red, green, blue]
    const CLEAR: [u8; 4] = [0, 0, 0, 0];
    const FACE: [u8; 4] = [255, 250, 204, 21];
    const INK: [u8; 4] = [255, 0, 0, 0];
    let pixel = |x: u32, y: u32| -> [u8; 4] {
        let (dx, dy) = (f64::from(x) - 255.5, f64::from(y) - 255.5);
        let r = dx.hypot(dy);
        let eye = |ex: f64| (dx - ex).powi(2) / 24.0_f64.powi(2) + (dy + 60.0).powi(2) / 40.0_f64.powi(2) < 1.0;
        let smile = dy > 20.0 && (140.0..164.0).contains(&r);
        match r {
            r if r >= 240.0 => CLEAR,
            r if r >= 226.0 => INK,
            _ if eye(-80.0) || eye(80.0) || smile => INK,
            _ => FACE,
        }
    };
    let pixels: Vec<[u8; 4]> = (0..SIZE).flat_map(|y| (0..SIZE).map(move |x| (x, y))).map(|(x, y)| pixel(x, y)).collect();
    // The values each channel takes, in the order VP8L codes them: green, red, blue, alpha.
    let order = [2, 1, 3, 0];
    let values: Vec<Vec<u8>> = order
        .iter()
        .map(|&c| {
            let mut v: Vec<u8> = pixels.iter().map(|p| p[c]).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let mut bits = LsbBits::default();
    bits.put(SIZE - 1, 14);
    bits.put(SIZE - 1, 14);
    bits.put(1, 1); // alpha is used
    bits.put(0, 3); // version
    bits.put(0, 1); // no transform
    bits.put(0, 1); // no colour cache
    bits.put(0, 1); // one prefix-code group for the whole image
    for channel in &values {
        simple_prefix_code(&mut bits, channel);
    }
    simple_prefix_code(&mut bits, &[0]); // distances: none are used
    for p in &pixels {
        for (&c, channel) in order.iter().zip(&values) {
            // Two symbols of one bit each: the smaller is 0, as a canonical code assigns.
            if let [_, high] = channel.as_slice() {
                bits.put(u32::from(p[c] == *high), 1);
            }
        }
    }
    let mut data = vec![0x2f]; // VP8L's signature
    data.extend(bits.finish());
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if data.len() % 2 == 1 {
        data.push(0); // chunks are padded to an even length
    }
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&u32::try_from(data.len() + 12).unwrap_or(u32::MAX).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&length.to_le_bytes());
    webp.extend(data);
    webp
}

/// A VP8L prefix code of one or two symbols below 256, each of code length one (or none, for
/// a single symbol).
fn simple_prefix_code(bits: &mut LsbBits, symbols: &[u8]) {
    bits.put(1, 1); // simple
    bits.put(u32::from(symbols.len() == 2), 1);
    let first = u32::from(symbols[0]);
    if first < 2 {
        bits.put(0, 1);
        bits.put(first, 1);
    } else {
        bits.put(1, 1);
        bits.put(first, 8);
    }
    if let Some(&second) = symbols.get(1) {
        bits.put(u32::from(second), 8);
    }
}

/// Bits written least significant first (VP8L).
#[derive(Default)]
struct LsbBits {
    out: Vec<u8>,
    pending: u64,
    count: u32,
}

impl LsbBits {
    fn put(&mut self, value: u32, bits: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += bits;
        while self.count >= 8 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.out.push(self.pending as u8);
        }
        self.out
    }
}

/// Length of the voice note, in 20 ms frames.
const VOICE_FRAMES: u64 = 150;

/// A voice note as WhatsApp sends them (Ogg Opus, mono, 48 kHz): three seconds of silence, in
/// the Opus frames an encoder makes of silence (CELT, full band, 20 ms, its silence flag set).
pub fn voice_note() -> Vec<u8> {
    const PRE_SKIP: u16 = 312;
    const SILENCE: &[u8] = &[0xF8, 0xFF, 0xFE];
    const SERIAL: u32 = 0x5742_5244;
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 1]); // version, channels
    head.extend_from_slice(&PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&[0, 0, 0]); // output gain, channel mapping family
    let vendor = b"wabridge sandbox";
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes()); // no comments
    let mut ogg = Vec::new();
    ogg_page(&mut ogg, 0x02, 0, SERIAL, 0, &[&head]);
    ogg_page(&mut ogg, 0, 0, SERIAL, 1, &[&tags]);
    let per_page = 50;
    let pages = VOICE_FRAMES.div_ceil(per_page);
    for page in 0..pages {
        let frames = per_page.min(VOICE_FRAMES - page * per_page);
        let packets = vec![SILENCE; frames as usize];
        let granule = (page * per_page + frames) * 960;
        let last = if page + 1 == pages { 0x04 } else { 0 };
        ogg_page(&mut ogg, last, granule, SERIAL, 2 + page as u32, &packets);
    }
    ogg
}

/// An Ogg page holding whole packets.
fn ogg_page(out: &mut Vec<u8>, flags: u8, granule: u64, serial: u32, sequence: u32, packets: &[&[u8]]) {
    let start = out.len();
    out.extend_from_slice(b"OggS");
    out.extend_from_slice(&[0, flags]);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the checksum, below
    let lacing: Vec<u8> = packets
        .iter()
        .flat_map(|p| std::iter::repeat_n(255u8, p.len() / 255).chain([(p.len() % 255) as u8]))
        .collect();
    out.push(u8::try_from(lacing.len()).unwrap_or(u8::MAX));
    out.extend(lacing);
    for packet in packets {
        out.extend_from_slice(packet);
    }
    let crc = ogg_crc(&out[start..]);
    out[start + 22..start + 26].copy_from_slice(&crc.to_le_bytes());
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, most significant bit first, no reflection, starting
/// at and finishing with zero.
fn ogg_crc(bytes: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in bytes {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

/// Video frame size (a whole number of 16×16 macroblocks), frames and their rate.
const VIDEO_WIDTH: u32 = 160;
const VIDEO_HEIGHT: u32 = 96;
const VIDEO_FRAMES: u32 = 10;
const VIDEO_FRAME_MS: u32 = 200;

/// A two-second video as WhatsApp's are (MP4, H.264): the picture's sun crossing the sky.
/// Every frame is an IDR picture of I_PCM macroblocks (raw samples, no transform), which any
/// H.264 decoder shows.
pub fn video() -> Vec<u8> {
    let (sps, pps) = (h264_sps(), h264_pps());
    let frames: Vec<Vec<u8>> = (0..VIDEO_FRAMES).map(|i| h264_idr_frame(i, f64::from(i) / f64::from(VIDEO_FRAMES - 1))).collect();
    let ftyp = mp4_box(b"ftyp", &[b"isom", &512u32.to_be_bytes(), b"isomiso2avc1mp41"]);
    let moov = |first_sample_at: u32| mp4_moov(&sps, &pps, &frames, first_sample_at);
    let first_sample_at = u32::try_from(ftyp.len() + moov(0).len() + 8).unwrap_or(u32::MAX);
    let samples: Vec<u8> = frames.concat();
    let mut mp4 = ftyp;
    mp4.extend(moov(first_sample_at));
    mp4.extend(mp4_box(b"mdat", &[&samples]));
    mp4
}

/// Baseline profile, level 3, 4:2:0, picture order from frame numbers, no cropping, no VUI.
fn h264_sps() -> Vec<u8> {
    let mut b = MsbBits::default();
    b.put(66, 8); // profile: Baseline
    b.put(0xC0, 8); // constraint_set0 and 1
    b.put(30, 8); // level 3
    b.ue(0); // seq_parameter_set_id
    b.ue(0); // log2_max_frame_num_minus4
    b.ue(2); // pic_order_cnt_type
    b.ue(1); // max_num_ref_frames
    b.put(0, 1); // gaps_in_frame_num_value_allowed_flag
    b.ue(VIDEO_WIDTH / 16 - 1);
    b.ue(VIDEO_HEIGHT / 16 - 1);
    b.put(1, 1); // frame_mbs_only_flag
    b.put(1, 1); // direct_8x8_inference_flag
    b.put(0, 1); // frame_cropping_flag
    b.put(0, 1); // vui_parameters_present_flag
    nal_unit(7, b.trailing())
}

/// CAVLC, one slice group, deblocking control present.
fn h264_pps() -> Vec<u8> {
    let mut b = MsbBits::default();
    b.ue(0); // pic_parameter_set_id
    b.ue(0); // seq_parameter_set_id
    b.put(0, 1); // entropy_coding_mode_flag: CAVLC
    b.put(0, 1); // bottom_field_pic_order_in_frame_present_flag
    b.ue(0); // num_slice_groups_minus1
    b.ue(0); // num_ref_idx_l0_default_active_minus1
    b.ue(0); // num_ref_idx_l1_default_active_minus1
    b.put(0, 1); // weighted_pred_flag
    b.put(0, 2); // weighted_bipred_idc
    b.se(0); // pic_init_qp_minus26
    b.se(0); // pic_init_qs_minus26
    b.se(0); // chroma_qp_index_offset
    b.put(1, 1); // deblocking_filter_control_present_flag
    b.put(0, 1); // constrained_intra_pred_flag
    b.put(0, 1); // redundant_pic_cnt_present_flag
    nal_unit(8, b.trailing())
}

/// Frame `index` (an IDR slice of I_PCM macroblocks, in BT.601 studio range) with the sun at
/// `sun` across, as an MP4 sample: its length, then the NAL unit.
fn h264_idr_frame(index: u32, sun: f64) -> Vec<u8> {
    let rgb = |x: u32, y: u32| landscape(f64::from(x) / f64::from(VIDEO_WIDTH), f64::from(y) / f64::from(VIDEO_HEIGHT), 0.1 + 0.8 * sun, f64::from(VIDEO_WIDTH) / f64::from(VIDEO_HEIGHT))
            .map(f64::from);
    let mut b = MsbBits::default();
    b.ue(0); // first_mb_in_slice
    b.ue(7); // slice_type: I, as every slice of the picture
    b.ue(0); // pic_parameter_set_id
    b.put(0, 4); // frame_num
    b.ue(index % 2); // idr_pic_id: consecutive IDR pictures differ
    b.put(0, 1); // no_output_of_prior_pics_flag
    b.put(0, 1); // long_term_reference_flag
    b.se(0); // slice_qp_delta
    b.ue(1); // disable_deblocking_filter_idc: off
    for mb_y in 0..VIDEO_HEIGHT / 16 {
        for mb_x in 0..VIDEO_WIDTH / 16 {
            b.ue(25); // mb_type: I_PCM
            b.align();
            for y in 0..16 {
                for x in 0..16 {
                    let [r, g, bl] = rgb(mb_x * 16 + x, mb_y * 16 + y);
                    b.byte(studio(16.0 + (65.481 * r + 128.553 * g + 24.966 * bl) / 255.0));
                }
            }
            let chroma = |weights: [f64; 3], b: &mut MsbBits| {
                for y in 0..8 {
                    for x in 0..8 {
                        let mut sum = 0.0;
                        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                            let [r, g, bl] = rgb(mb_x * 16 + 2 * x + dx, mb_y * 16 + 2 * y + dy);
                            sum += weights[0] * r + weights[1] * g + weights[2] * bl;
                        }
                        b.byte(studio(128.0 + sum / 4.0 / 255.0));
                    }
                }
            };
            chroma([-37.797, -74.203, 112.0], &mut b); // Cb
            chroma([112.0, -93.786, -18.214], &mut b); // Cr
        }
    }
    let nal = nal_unit(5, b.trailing());
    let mut sample = u32::try_from(nal.len()).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    sample.extend(nal);
    sample
}

/// A sample value in studio range (never 0, so no start code can appear among them).
fn studio(v: f64) -> u8 {
    v.round().clamp(16.0, 240.0) as u8
}

/// A NAL unit of `kind` (referenced) around its payload, with emulation prevention bytes.
fn nal_unit(kind: u8, rbsp: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    out.push(0x60 | kind);
    let mut zeros = 0;
    for byte in rbsp {
        if zeros >= 2 && byte <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(byte);
        zeros = if byte == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Bits written most significant first, with Exp-Golomb codes (H.264).
#[derive(Default)]
struct MsbBits {
    out: Vec<u8>,
    pending: u8,
    count: u32,
}

impl MsbBits {
    fn put(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.pending = (self.pending << 1) | ((value >> i) & 1) as u8;
            self.count += 1;
            if self.count == 8 {
                self.out.push(self.pending);
                (self.pending, self.count) = (0, 0);
            }
        }
    }

    fn ue(&mut self, value: u32) {
        let coded = value + 1;
        let len = 32 - coded.leading_zeros();
        self.put(0, len - 1);
        self.put(coded, len);
    }

    fn se(&mut self, value: i32) {
        self.ue(if value > 0 { 2 * value.unsigned_abs() - 1 } else { 2 * value.unsigned_abs() });
    }

    fn align(&mut self) {
        while self.count != 0 {
            self.put(0, 1);
        }
    }

    fn byte(&mut self, value: u8) {
        self.put(u32::from(value), 8);
    }

    /// The stop bit and the alignment, and the bytes.
    fn trailing(mut self) -> Vec<u8> {
        self.put(1, 1);
        self.align();
        self.out
    }
}

/// The movie's header and its one video track, whose samples lie one after another from
/// `first_sample_at` (a byte offset in the file).
fn mp4_moov(sps: &[u8], pps: &[u8], frames: &[Vec<u8>], first_sample_at: u32) -> Vec<u8> {
    let count = u32::try_from(frames.len()).unwrap_or(u32::MAX);
    let duration = count * VIDEO_FRAME_MS;
    let matrix: Vec<u8> = [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000].iter().flat_map(|v| v.to_be_bytes()).collect();
    let be = |v: u32| v.to_be_bytes();
    let mvhd = full_box(b"mvhd", 0, &[&[0; 8], &be(1000), &be(duration), &be(0x0001_0000), &[1, 0], &[0; 10], &matrix, &[0; 24], &be(2)]);
    let tkhd = full_box(
        b"tkhd",
        3, // enabled, in the movie
        &[&[0; 8], &be(1), &[0; 4], &be(duration), &[0; 8], &[0; 8], &matrix, &be(VIDEO_WIDTH << 16), &be(VIDEO_HEIGHT << 16)],
    );
    let mdhd = full_box(b"mdhd", 0, &[&[0; 8], &be(1000), &be(duration), &[0x55, 0xC4, 0, 0]]); // language "und"
    let hdlr = full_box(b"hdlr", 0, &[&[0; 4], b"vide", &[0; 12], b"VideoHandler\0"]);
    let vmhd = full_box(b"vmhd", 1, &[&[0; 8]]);
    let dinf = mp4_box(b"dinf", &[&full_box(b"dref", 0, &[&be(1), &full_box(b"url ", 1, &[])])]);
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xFF, 0xE1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps);
    let mut name = [0u8; 32];
    name[..9].copy_from_slice(b"\x08wabridge");
    let avc1 = mp4_box(
        b"avc1",
        &[
            &[0; 6],
            &[0, 1], // data reference index
            &[0; 16],
            &(VIDEO_WIDTH as u16).to_be_bytes(),
            &(VIDEO_HEIGHT as u16).to_be_bytes(),
            &be(0x0048_0000),
            &be(0x0048_0000),
            &[0; 4],
            &[0, 1], // frames per sample
            &name,
            &[0, 0x18, 0xFF, 0xFF], // depth, pre-defined -1
            &mp4_box(b"avcC", &[&avcc]),
        ],
    );
    let stsd = full_box(b"stsd", 0, &[&be(1), &avc1]);
    let stts = full_box(b"stts", 0, &[&be(1), &be(count), &be(VIDEO_FRAME_MS)]);
    let stsc = full_box(b"stsc", 0, &[&be(1), &be(1), &be(count), &be(1)]);
    let sizes: Vec<u8> = frames.iter().flat_map(|f| be(u32::try_from(f.len()).unwrap_or(u32::MAX))).collect();
    let stsz = full_box(b"stsz", 0, &[&be(0), &be(count), &sizes]);
    let stco = full_box(b"stco", 0, &[&be(1), &be(first_sample_at)]);
    let stbl = mp4_box(b"stbl", &[&stsd, &stts, &stsc, &stsz, &stco]);
    let minf = mp4_box(b"minf", &[&vmhd, &dinf, &stbl]);
    let mdia = mp4_box(b"mdia", &[&mdhd, &hdlr, &minf]);
    let trak = mp4_box(b"trak", &[&tkhd, &mdia]);
    mp4_box(b"moov", &[&mvhd, &trak])
}

/// An ISO base media box: its size, its type, its contents.
fn mp4_box(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let size = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(kind);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// A full box: version 0 and `flags` before the contents.
fn full_box(kind: &[u8; 4], flags: u32, parts: &[&[u8]]) -> Vec<u8> {
    let header = flags.to_be_bytes();
    let mut all: Vec<&[u8]> = vec![&header];
    all.extend_from_slice(parts);
    mp4_box(kind, &all)
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
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn the_voice_note_is_whole_ogg_opus_of_three_seconds() {
        // CRC-32/CKSUM of "123456789" without its final inversion.
        assert_eq!(ogg_crc(b"123456789"), !0x765E_7680);
        let ogg = voice_note();
        let (mut at, mut pages, mut packets, mut granule) = (0, Vec::new(), 0, 0);
        while at < ogg.len() {
            let page = &ogg[at..];
            assert_eq!(&page[..4], b"OggS");
            let segments = usize::from(page[26]);
            let length = 27 + segments + page[27..27 + segments].iter().map(|&l| usize::from(l)).sum::<usize>();
            let mut unsummed = page[..length].to_vec();
            unsummed[22..26].fill(0);
            assert_eq!(ogg_crc(&unsummed).to_le_bytes(), page[22..26], "page {}'s checksum", pages.len());
            granule = u64::from_le_bytes(page[6..14].try_into().unwrap());
            pages.push(page[5]);
            if pages.len() > 2 {
                packets += segments;
            }
            at += length;
        }
        assert_eq!(&ogg[28..36], b"OpusHead");
        assert_eq!(pages.first(), Some(&0x02), "begins the stream");
        assert_eq!(pages.last(), Some(&0x04), "ends it");
        assert_eq!((packets, granule), (150, 150 * 960), "three seconds of 20 ms frames");
    }

    #[test]
    fn the_sticker_is_a_whole_lossless_webp_of_512_pixels() {
        let webp = sticker();
        assert_eq!((&webp[..4], &webp[8..16]), (&b"RIFF"[..], &b"WEBPVP8L"[..]));
        assert_eq!(u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize, webp.len() - 8);
        let chunk = u32::from_le_bytes(webp[16..20].try_into().unwrap()) as usize;
        assert_eq!(chunk.next_multiple_of(2), webp.len() - 20);
        assert_eq!(webp[20], 0x2f, "VP8L's signature");
        let header = u32::from_le_bytes(webp[21..25].try_into().unwrap());
        assert_eq!((header & 0x3FFF, (header >> 14) & 0x3FFF, header >> 28), (511, 511, 1), "512×512 with alpha, version 0");
        // Four one-bit channels for each of 512×512 pixels, after the headers.
        assert!(chunk > 512 * 512 / 2 && chunk < 512 * 512 / 2 + 32, "{chunk}");
    }

    #[test]
    fn the_video_is_a_whole_mp4_of_h264_frames() {
        let mp4 = video();
        let mut boxes = Vec::new();
        let mut at = 0;
        while at < mp4.len() {
            let size = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap()) as usize;
            boxes.push((&mp4[at + 4..at + 8], at));
            at += size;
        }
        assert_eq!(at, mp4.len(), "the boxes fill the file");
        assert_eq!(boxes.iter().map(|b| b.0).collect::<Vec<_>>(), [b"ftyp", b"moov", b"mdat"]);
        let find = |kind: &[u8]| mp4.windows(4).position(|w| w == kind).unwrap();
        let stco = find(b"stco");
        let first_sample = u32::from_be_bytes(mp4[stco + 12..stco + 16].try_into().unwrap()) as usize;
        assert_eq!(first_sample, boxes[2].1 + 8, "the chunk offset points into mdat");
        let stsz = find(b"stsz");
        let sizes: Vec<usize> = (0..10).map(|i| u32::from_be_bytes(mp4[stsz + 16 + 4 * i..stsz + 20 + 4 * i].try_into().unwrap()) as usize).collect();
        assert_eq!(sizes.iter().sum::<usize>(), mp4.len() - first_sample, "ten samples fill mdat");
        let mut sample = first_sample;
        for size in sizes {
            let nal = u32::from_be_bytes(mp4[sample..sample + 4].try_into().unwrap()) as usize;
            assert_eq!((nal + 4, mp4[sample + 4]), (size, 0x65), "one IDR slice per sample");
            sample += size;
        }
        let avcc = find(b"avcC");
        assert_eq!(&mp4[avcc + 4..avcc + 8], &[1, 66, 0xC0, 30], "Baseline, level 3");
        assert_eq!(&mp4[avcc + 12..avcc + 14], &[0x67, 66], "its sequence parameter set");
    }
}
