//! Identity profiles: how the identifier that ECCSI and SAKKE bind to is formed.
//!
//! * **RFC 6509** (the gateway's): `YYYY-MM\0tel:+NNN\0`, monthly key periods in UTC, SAKKE ID
//!   scheme 1, PRF 0 (HMAC-SHA-1), SRTP-ID crypto session map.
//! * **3GPP TS 33.180 (MCX)**: a 32-byte UID = SHA-256 over the TS 33.220 KDF input string built
//!   from the user URI, KMS URI, key period length, offset and number (TS 33.180 F.2.1, integers
//!   in minimal-length big-endian as the published vectors show), SAKKE ID scheme 2, PRF 1
//!   (HMAC-SHA-256), GENERIC-ID map.

use sha2::{Digest, Sha256};

use crate::Error;
use crate::kdf::Prf;

use super::payload::{ID_SCHEME_TEL_URI, ID_SCHEME_UID};

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Which identity profile a message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// RFC 6509: tel URI identifiers with monthly periods.
    Rfc6509,
    /// 3GPP TS 33.180: UID identifiers.
    Mcx,
}

impl Profile {
    /// The SAKKE payload ID scheme of this profile.
    pub fn id_scheme(self) -> u8 {
        match self {
            Self::Rfc6509 => ID_SCHEME_TEL_URI,
            Self::Mcx => ID_SCHEME_UID,
        }
    }

    /// The profile for a SAKKE ID scheme.
    pub fn from_id_scheme(scheme: u8) -> Result<Self, Error> {
        match scheme {
            ID_SCHEME_TEL_URI => Ok(Self::Rfc6509),
            ID_SCHEME_UID => Ok(Self::Mcx),
            _ => Err(Error::Unsupported("ID scheme")),
        }
    }

    /// The PRF this profile uses for the messages it creates.
    pub fn prf(self) -> Prf {
        match self {
            Self::Rfc6509 => Prf::HmacSha1,
            Self::Mcx => Prf::HmacSha256,
        }
    }

    /// Parses `rfc6509` or `mcx`.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "rfc6509" => Ok(Self::Rfc6509),
            "mcx" => Ok(Self::Mcx),
            _ => Err(Error::Unsupported("profile")),
        }
    }
}

/// A monthly key period of RFC 6509 (a UTC calendar month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPeriod {
    year: u16,
    month: u8,
}

/// Days since 1970-01-01 to (year, month) — the civil calendar (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8)
}

impl KeyPeriod {
    /// A period from year (1000–9999) and month (1–12).
    pub fn new(year: u16, month: u8) -> Result<Self, Error> {
        if !(1000..=9999).contains(&year) || !(1..=12).contains(&month) {
            return Err(Error::Encoding("key period"));
        }
        Ok(Self { year, month })
    }

    /// The period containing Unix time `secs`.
    pub fn from_unix(secs: u64) -> Result<Self, Error> {
        let days = i64::try_from(secs / 86_400).map_err(|_| Error::Encoding("time"))?;
        let (y, m) = civil_from_days(days);
        Self::new(u16::try_from(y).map_err(|_| Error::Encoding("time"))?, m)
    }

    /// The period containing NTP-UTC seconds `secs` (seconds since 1900).
    pub fn from_ntp_seconds(secs: u64) -> Result<Self, Error> {
        Self::from_unix(
            secs.checked_sub(NTP_UNIX_OFFSET)
                .ok_or(Error::Encoding("time"))?,
        )
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// Unix seconds of the first second of the period (days-from-civil, proleptic Gregorian).
    pub fn start_unix(self) -> u64 {
        let (y, m) = (i64::from(self.year), i64::from(self.month));
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        // Years are 1000..=9999, so days before 1970 are the only negative case.
        u64::try_from(days * 86_400).unwrap_or(0)
    }

    /// The following month.
    pub fn next(self) -> Result<Self, Error> {
        if self.month == 12 {
            Self::new(self.year + 1, 1)
        } else {
            Self::new(self.year, self.month + 1)
        }
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' || !s.is_char_boundary(4) {
            return Err(Error::Encoding("key period"));
        }
        let year = s[..4].parse().map_err(|_| Error::Encoding("key period"))?;
        let month = s[5..].parse().map_err(|_| Error::Encoding("key period"))?;
        Self::new(year, month)
    }

    /// The RFC 6509 identifier `YYYY-MM\0<uri>\0` for `uri` (e.g. `tel:+447700900123`).
    pub fn identifier(self, uri: &str) -> Vec<u8> {
        let mut id = self.to_string().into_bytes();
        id.push(0);
        id.extend_from_slice(uri.as_bytes());
        id.push(0);
        id
    }
}

impl core::fmt::Display for KeyPeriod {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Splits an RFC 6509 identifier `YYYY-MM\0uri\0` into its period and URI.
pub fn split_rfc6509_identifier(id: &[u8]) -> Result<(KeyPeriod, &str), Error> {
    let rest = id
        .strip_suffix(&[0])
        .ok_or(Error::Encoding("RFC 6509 identifier"))?;
    let (date, uri) = (
        rest.get(..7)
            .ok_or(Error::Encoding("RFC 6509 identifier"))?,
        rest.get(8..)
            .ok_or(Error::Encoding("RFC 6509 identifier"))?,
    );
    if rest[7] != 0 || uri.contains(&0) {
        return Err(Error::Encoding("RFC 6509 identifier"));
    }
    let date = core::str::from_utf8(date).map_err(|_| Error::Encoding("RFC 6509 identifier"))?;
    let uri = core::str::from_utf8(uri).map_err(|_| Error::Encoding("RFC 6509 identifier"))?;
    Ok((KeyPeriod::parse(date)?, uri))
}

/// Parameters of a TS 33.180 UID key period scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McxPeriods {
    /// The KMS URI.
    pub kms_uri: String,
    /// Key period length in seconds.
    pub period_len: u64,
    /// Key period offset in seconds.
    pub offset: u64,
}

impl McxPeriods {
    /// The key period number that NTP-UTC seconds `secs` fall in.
    pub fn period_no(&self, ntp_secs: u64) -> Result<u64, Error> {
        if self.period_len == 0 {
            return Err(Error::Encoding("key period length"));
        }
        Ok(ntp_secs
            .checked_sub(self.offset)
            .ok_or(Error::Encoding("time"))?
            / self.period_len)
    }

    /// The UID of `uri` for key period number `period_no`.
    pub fn uid(&self, uri: &str, period_no: u64) -> [u8; 32] {
        mcx_uid(uri, &self.kms_uri, self.period_len, self.offset, period_no)
    }
}

/// Minimal-length big-endian bytes of `v` (one zero byte for zero).
fn minimal_be(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8).min(7) as usize;
    (bytes, skip)
}

/// The TS 33.180 F.2.1 UID: SHA-256 of `FC=0x00 || P0 || L0 || … || P5 || L5` with
/// P0 = "MIKEY-SAKKE-UID", P1 = user URI, P2 = KMS URI, P3 = key period length, P4 = offset,
/// P5 = current key period number (integers minimal-length big-endian, lengths 16-bit).
pub fn mcx_uid(uri: &str, kms_uri: &str, period_len: u64, offset: u64, period_no: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    let mut part = |p: &[u8]| {
        h.update(p);
        // Longer parameters are truncated to what the 16-bit length can name.
        h.update((p.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    };
    part(b"MIKEY-SAKKE-UID");
    part(uri.as_bytes());
    part(kms_uri.as_bytes());
    for v in [period_len, offset, period_no] {
        let (b, skip) = minimal_be(v);
        part(&b[skip..]);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_utc_calendar() {
        // 2011-02-28T23:59:59Z and the second after.
        assert_eq!(
            KeyPeriod::from_unix(1_298_937_599).unwrap().to_string(),
            "2011-02"
        );
        assert_eq!(
            KeyPeriod::from_unix(1_298_937_600).unwrap().to_string(),
            "2011-03"
        );
        // 2024-02-29 (leap day) and 2000-12-31.
        assert_eq!(
            KeyPeriod::from_unix(1_709_164_800).unwrap().to_string(),
            "2024-02"
        );
        assert_eq!(
            KeyPeriod::from_unix(978_220_800).unwrap().to_string(),
            "2000-12"
        );
        let dec = KeyPeriod::parse("2026-12").unwrap();
        assert_eq!(dec.next().unwrap().to_string(), "2027-01");
        assert!(KeyPeriod::parse("2026-13").is_err());
        assert!(KeyPeriod::parse("2026/01").is_err());
        assert!(KeyPeriod::parse("2026-1").is_err());
    }

    #[test]
    fn period_start_is_first_second_of_month() {
        for p in ["1970-01", "2011-02", "2024-03", "2026-12", "2000-03"] {
            let period = KeyPeriod::parse(p).unwrap();
            let t = period.start_unix();
            assert_eq!(KeyPeriod::from_unix(t).unwrap(), period);
            if t > 0 {
                assert_ne!(KeyPeriod::from_unix(t - 1).unwrap(), period);
            }
        }
    }

    #[test]
    fn rfc6509_identifier_round_trips() {
        let p = KeyPeriod::parse("2011-02").unwrap();
        let id = p.identifier("tel:+447700900123");
        assert_eq!(id, b"2011-02\0tel:+447700900123\0");
        let (q, uri) = split_rfc6509_identifier(&id).unwrap();
        assert_eq!((q, uri), (p, "tel:+447700900123"));
        assert!(split_rfc6509_identifier(b"2011-02\0tel:+4477").is_err());
        assert!(split_rfc6509_identifier(b"2011-02tel:+4477\0").is_err());
        assert!(split_rfc6509_identifier(b"\0").is_err());
    }

    #[test]
    fn ntp_period_numbers() {
        let p = McxPeriods {
            kms_uri: "kms.mydev.streamwide.com".into(),
            period_len: 16_777_215,
            offset: 0,
        };
        // The MCX vectors' T payload: NTP seconds 0xec898da8 fall in period 236.
        assert_eq!(p.period_no(0xec89_8da8).unwrap(), 236);
    }
}
