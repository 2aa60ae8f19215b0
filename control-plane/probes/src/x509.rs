//! The one field of an X.509 certificate the HTTP probe needs: when it expires.
//!
//! A full X.509 parser would pull in a dozen crates for a single date. The certificate
//! reaching this code was just verified by rustls, so it is well-formed DER; this walks
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, .. } .. }`
//! (RFC 5280 §4.1) and still returns `None` rather than panicking on anything else.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter`, in seconds since the Unix epoch.
pub(super) fn not_after(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let (mut tag, _, mut rest) = element(tbs)?;
    if tag == VERSION {
        (tag, _, rest) = element(rest)?;
    }
    if tag != INTEGER {
        return None;
    }
    // signature AlgorithmIdentifier, issuer Name, then validity.
    let (SEQUENCE, _, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, _, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // high tag numbers never occur in the fields walked here
    }
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || input.len() < octets {
            return None;
        }
        let (len_bytes, rest) = input.split_at(octets);
        input = rest;
        len_bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (contents, rest) = input.split_at(len);
    Some((tag, contents, rest))
}

/// `YYMMDDHHMMSSZ` (UTCTime, years 1950-2049) or `YYYYMMDDHHMMSS[.fff]Z`
/// (GeneralizedTime), as DER requires them.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy: i32 = number(digits.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME => (number(digits.get(..4)?)?, &digits[4..]),
        _ => return None,
    };
    // Fractional seconds, if any, do not matter here.
    let rest = rest.split('.').next()?;
    if rest.len() != 10 {
        return None;
    }
    let field = |i: usize| number::<u32>(&rest[i..i + 2]);
    let date = chrono::NaiveDate::from_ymd_opt(year, field(0)?, field(2)?)?;
    let time = date.and_hms_opt(field(4)?, field(6)?, field(8)?)?;
    Some(time.and_utc().timestamp())
}

fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_expiring(year: i32, month: u8, day: u8) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn timestamp(year: i32, month: u32, day: u32) -> i64 {
        chrono::NaiveDate::from_ymd_opt(year, month, day)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    }

    #[test]
    fn reads_utc_time_and_generalized_time() {
        // rcgen, like RFC 5280 asks, writes dates before 2050 as UTCTime, later ones
        // as GeneralizedTime.
        assert_eq!(
            not_after(&certificate_expiring(2031, 7, 15)),
            Some(timestamp(2031, 7, 15))
        );
        assert_eq!(
            not_after(&certificate_expiring(2061, 2, 28)),
            Some(timestamp(2061, 2, 28))
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2524607999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631152000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20500101000000.5Z"),
            Some(2524608000)
        );
        assert_eq!(parse_time(UTC_TIME, b"4912312359Z"), None);
        assert_eq!(parse_time(UTC_TIME, b"491331235959Z"), None);
        assert_eq!(parse_time(UTC_TIME, b"491231235959"), None);
        assert_eq!(parse_time(INTEGER, b"491231235959Z"), None);
    }

    #[test]
    fn garbage_is_none() {
        let der = certificate_expiring(2031, 7, 15);
        for len in 0..der.len() {
            assert_eq!(not_after(&der[..len]), None, "truncated to {len} bytes");
        }
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(not_after(b"-----BEGIN CERTIFICATE-----"), None);
    }
}
