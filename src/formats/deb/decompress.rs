//! The compressions dpkg reads in `.deb` members (none, gzip, xz, zstd), and
//! a reader that counts inflated bytes against a cap.

use std::io::{self, BufReader, Read};

use super::DebLimits;

/// A member's compression, from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The compression of `<base><suffix>` (`control.tar.xz` with base
    /// `control.tar`), or why it is refused.
    pub fn from_suffix(suffix: &str) -> Result<Self, String> {
        match suffix {
            "" => Ok(Self::None),
            ".gz" => Ok(Self::Gzip),
            ".xz" => Ok(Self::Xz),
            ".zst" => Ok(Self::Zstd),
            ".bz2" | ".lzma" => Err(format!(
                "{suffix} compression is refused: dpkg deprecated it and current tools no longer \
                 write it; rebuild with `dpkg-deb -Zxz` (or gzip, zstd)"
            )),
            other => Err(format!(
                "unknown compression {other:?} (dpkg reads none, .gz, .xz and .zst)"
            )),
        }
    }
}

/// A decoder of one member's bytes.
pub(super) type Decoder<'a> = Box<dyn Read + 'a>;

/// Opens a decoder for `compression` over `src`; zstd frames whose window is
/// larger than `limits.zstd_window` are refused here (libzstd's default, which
/// dpkg uses, refuses them too).
pub(super) fn decoder<'a, R: Read + 'a>(
    compression: Compression,
    src: R,
    limits: &DebLimits,
) -> Result<Decoder<'a>, String> {
    Ok(match compression {
        Compression::None => Box::new(src),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        Compression::Xz => {
            // CONCATENATED: like `xz -d`, read every stream up to the end of
            // the member, so trailing garbage is an error, not ignored.
            let stream = xz2::stream::Stream::new_stream_decoder(
                limits.xz_memory,
                xz2::stream::CONCATENATED,
            )
            .map_err(|e| format!("cannot start the xz decoder: {e}"))?;
            Box::new(xz2::read::XzDecoder::new_stream(
                BufReader::new(src),
                stream,
            ))
        }
        Compression::Zstd => Box::new(Zstd::start(
            BufReader::with_capacity(64 << 10, src),
            limits.zstd_window,
        )?),
    })
}

/// The window a zstd frame declares, from its header (RFC 8878 3.1.1.1),
/// `None` for single-segment frames (their window is their content size).
fn zstd_window<R: Read>(src: &mut BufReader<R>) -> Result<Option<u64>, String> {
    use std::io::BufRead as _;
    let head = src
        .fill_buf()
        .map_err(|e| format!("reading the zstd frame header: {e}"))?;
    if head.len() < 6 {
        // Too short for any frame; the decoder reports it precisely.
        return Ok(None);
    }
    if head[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err("not a zstd frame (bad magic number)".to_owned());
    }
    let descriptor = head[4];
    if descriptor & 0x20 != 0 {
        return Ok(None);
    }
    let w = head[5];
    let log = 10 + u64::from(w >> 3);
    let base = 1u64 << log;
    Ok(Some(base + (base / 8) * u64::from(w & 7)))
}

type ZstdFrame<R> = ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>;

/// zstd frames one after the other up to the end of the member, as `zstd -d`
/// reads them, each window checked against the cap and each content checksum
/// verified (ruzstd's streaming decoder does not check it).
struct Zstd<R: Read> {
    frame: Option<ZstdFrame<BufReader<R>>>,
    max_window: u64,
}

impl<R: Read> Zstd<R> {
    fn start(src: BufReader<R>, max_window: u64) -> Result<Self, String> {
        Ok(Self {
            frame: Some(open_frame(src, max_window)?),
            max_window,
        })
    }
}

/// Starts decoding the frame at the start of `src`.
fn open_frame<R: Read>(
    mut src: BufReader<R>,
    max_window: u64,
) -> Result<ZstdFrame<BufReader<R>>, String> {
    if let Some(window) = zstd_window(&mut src)?.filter(|&w| w > max_window) {
        return Err(format!(
            "the zstd frame needs a {window}-byte window, more than the {max_window} allowed"
        ));
    }
    ruzstd::decoding::StreamingDecoder::new(src).map_err(|e| format!("bad zstd frame: {e}"))
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::BufRead as _;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(frame) = self.frame.as_mut() else {
                return Ok(0);
            };
            let n = frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let decoder = &frame.decoder;
            if let (Some(stored), Some(computed)) = (
                decoder.get_checksum_from_data(),
                decoder.get_calculated_checksum(),
            ) {
                if stored != computed {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "zstd content checksum mismatch (stored {stored:08x}, computed {computed:08x})"
                        ),
                    ));
                }
            }
            let mut src = self.frame.take().expect("checked above").into_inner();
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            self.frame = Some(
                open_frame(src, self.max_window)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            );
        }
    }
}

/// Counts inflated bytes; past `cap` reads fail and `exceeded` is set.
pub(super) struct Capped<R> {
    inner: R,
    pub count: u64,
    cap: u64,
    pub exceeded: bool,
}

impl<R: Read> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Self {
        Self {
            inner,
            count: 0,
            cap,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.exceeded {
            return Err(io::Error::other("inflated size cap exceeded"));
        }
        // Ask for one byte past the cap at most, to see it exceeded.
        let room = self.cap.saturating_sub(self.count).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.count += n as u64;
        if self.count > self.cap {
            self.exceeded = true;
            return Err(io::Error::other("inflated size cap exceeded"));
        }
        Ok(n)
    }
}

/// The inflated-size cap of a member of `compressed` bytes: `max`, lowered to
/// `limits.max_ratio` times the compressed size, but never below
/// `limits.ratio_floor`.
pub(super) fn inflated_cap(max: u64, compressed: u64, limits: &DebLimits) -> u64 {
    let by_ratio = compressed
        .saturating_mul(limits.max_ratio)
        .max(limits.ratio_floor);
    max.min(by_ratio)
}
