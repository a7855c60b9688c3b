//! Digest authentication as a client (RFC 7616, RFC 8760 for SIP, RFC 2617 compatible): parse a
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge and compute the `Authorization` /
//! `Proxy-Authorization` value with MD5, SHA-256 or SHA-512-256 (the truncated SHA-512/256 of
//! FIPS 180-4, not SHA-512), their `-sess` variants, `qop=auth` / `auth-int`, nonce counting and
//! `userhash`.
//!
//! The password is zeroized on drop and never printed; intermediate hashes derived from it are
//! wiped after use.

use std::fmt::{self, Write as _};

use md5::Md5;
use sha2::{Sha256, Sha512_256};
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Result};

const MAX_CHALLENGE_LEN: usize = 4096;
const MAX_PARAMS: usize = 32;

/// The hash algorithm of a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (the default when a challenge names none).
    Md5,
    /// SHA-256.
    Sha256,
    /// SHA-512/256 (SHA-512 with other initial values, truncated to 256 bits).
    Sha512_256,
}

impl Algorithm {
    fn hash_hex(self, parts: &[&[u8]]) -> Zeroizing<String> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Zeroizing<String> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            let mut out = d.finalize();
            let hex = Zeroizing::new(hex::encode(&out));
            let bytes: &mut [u8] = &mut out;
            bytes.zeroize();
            hex
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
            Algorithm::Sha512_256 => run::<Sha512_256>(parts),
        }
    }

    /// Preference when a peer offers several challenges: stronger first.
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha256 => 1,
            Algorithm::Sha512_256 => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }
}

/// Quality of protection chosen for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    /// Authentication only.
    Auth,
    /// Authentication with integrity of the body.
    AuthInt,
}

impl Qop {
    fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// A parsed `Digest` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// Whether the algorithm is a `-sess` variant.
    pub session: bool,
    /// The qop to use: `auth` when offered, else `auth-int`, else none (RFC 2069 style).
    pub qop: Option<Qop>,
    /// `stale=true`: the previous credentials were right but the nonce expired.
    pub stale: bool,
    /// `userhash=true` (RFC 7616 §3.4.4).
    pub userhash: bool,
}

/// Splits `name=value` auth-params separated by commas, honouring quoted strings.
fn auth_params(mut s: &str) -> Result<Vec<(&str, String)>> {
    let bad = |r| Error::header("WWW-Authenticate", r);
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return Ok(out);
        }
        if out.len() == MAX_PARAMS {
            return Err(bad("too many parameters"));
        }
        let eq = s.find('=').ok_or(bad("parameter without value"))?;
        let name = s[..eq].trim();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return Err(bad("bad parameter name"));
        }
        s = s[eq + 1..].trim_start();
        if let Some(rest) = s.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => return Err(bad("unterminated quoted string")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(bad("unterminated quoted string")),
                }
            };
            s = &rest[end + 1..];
            out.push((name, value));
        } else {
            let end = s.find(',').unwrap_or(s.len());
            out.push((name, s[..end].trim().to_owned()));
            s = &s[end..];
        }
    }
}

impl Challenge {
    /// Parses one challenge header value (`Digest realm="…", nonce="…", …`). Schemes other than
    /// Digest and algorithms this client does not implement are errors.
    pub fn parse(value: &str) -> Result<Challenge> {
        let bad = |r| Error::header("WWW-Authenticate", r);
        if value.len() > MAX_CHALLENGE_LEN {
            return Err(bad("challenge too long"));
        }
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(Error::Digest("not a Digest challenge"));
        }
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = (Algorithm::Md5, false);
        let mut qop = None;
        let mut stale = false;
        let mut userhash = false;
        for (name, v) in auth_params(rest)? {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => opaque = Some(v),
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                "userhash" => userhash = v.eq_ignore_ascii_case("true"),
                "algorithm" => {
                    let (base, sess) = match v.len().checked_sub(5) {
                        Some(n) if v.get(n..).is_some_and(|t| t.eq_ignore_ascii_case("-sess")) => {
                            (&v[..n], true)
                        }
                        _ => (v.as_str(), false),
                    };
                    let alg = match base.to_ascii_uppercase().as_str() {
                        "MD5" => Algorithm::Md5,
                        "SHA-256" => Algorithm::Sha256,
                        "SHA-512-256" => Algorithm::Sha512_256,
                        _ => return Err(Error::Digest("unsupported algorithm")),
                    };
                    algorithm = (alg, sess);
                }
                "qop" => {
                    let opts: Vec<&str> = v.split(',').map(str::trim).collect();
                    qop = if opts.iter().any(|o| o.eq_ignore_ascii_case("auth")) {
                        Some(Qop::Auth)
                    } else if opts.iter().any(|o| o.eq_ignore_ascii_case("auth-int")) {
                        Some(Qop::AuthInt)
                    } else {
                        return Err(Error::Digest("no supported qop"));
                    };
                }
                _ => {}
            }
        }
        Ok(Challenge {
            realm: realm.ok_or(bad("missing realm"))?,
            nonce: nonce.ok_or(bad("missing nonce"))?,
            opaque,
            algorithm: algorithm.0,
            session: algorithm.1,
            qop,
            stale,
            userhash,
        })
    }

    /// Of several challenge header values (a server may offer one per algorithm), the strongest
    /// one this client supports; unparsable or unsupported ones are skipped.
    pub fn best<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .max_by_key(|c| c.algorithm.strength())
    }
}

/// A username and password. The password is zeroized on drop and redacted in `Debug`.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Credentials for `username`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The request a response is computed for.
#[derive(Clone, Copy, Debug)]
pub struct RequestTarget<'a> {
    /// SIP method (`INVITE`, …).
    pub method: &'a str,
    /// The digest-uri: the Request-URI as sent.
    pub uri: &'a str,
    /// The body, for `qop=auth-int`.
    pub body: &'a [u8],
}

/// The `response` hash and the header value built from it.
fn compute(
    c: &Challenge,
    cred: &Credentials,
    target: &RequestTarget<'_>,
    cnonce: &str,
    nc: u32,
) -> (Zeroizing<String>, String) {
    let alg = c.algorithm;
    let user = cred.username.as_bytes();
    let realm = c.realm.as_bytes();
    let mut ha1 = alg.hash_hex(&[user, b":", realm, b":", cred.password.as_bytes()]);
    if c.session {
        ha1 = alg.hash_hex(&[
            ha1.as_bytes(),
            b":",
            c.nonce.as_bytes(),
            b":",
            cnonce.as_bytes(),
        ]);
    }
    let ha2 = match c.qop {
        Some(Qop::AuthInt) => {
            let hb = alg.hash_hex(&[target.body]);
            alg.hash_hex(&[
                target.method.as_bytes(),
                b":",
                target.uri.as_bytes(),
                b":",
                hb.as_bytes(),
            ])
        }
        _ => alg.hash_hex(&[target.method.as_bytes(), b":", target.uri.as_bytes()]),
    };
    let nc_hex = format!("{nc:08x}");
    let response = match c.qop {
        Some(q) => alg.hash_hex(&[
            ha1.as_bytes(),
            b":",
            c.nonce.as_bytes(),
            b":",
            nc_hex.as_bytes(),
            b":",
            cnonce.as_bytes(),
            b":",
            q.name().as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
        None => alg.hash_hex(&[
            ha1.as_bytes(),
            b":",
            c.nonce.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
    };
    let username = if c.userhash {
        alg.hash_hex(&[user, b":", realm]).to_string()
    } else {
        cred.username.clone()
    };
    let mut h = String::with_capacity(256);
    let q = quote;
    let _ = write!(
        h,
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}{}",
        q(&username),
        q(&c.realm),
        q(&c.nonce),
        q(target.uri),
        response.as_str(),
        alg.name(),
        if c.session { "-sess" } else { "" },
    );
    if let Some(qop) = c.qop {
        let _ = write!(h, ", qop={}, nc={nc_hex}, cnonce={}", qop.name(), q(cnonce));
    }
    if let Some(o) = &c.opaque {
        let _ = write!(h, ", opaque={}", q(o));
    }
    if c.userhash {
        h.push_str(", userhash=true");
    }
    (response, h)
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Client state for one challenge: answers requests with increasing nonce counts.
#[derive(Clone, Debug)]
pub struct DigestClient {
    challenge: Challenge,
    nc: u32,
}

impl DigestClient {
    /// Starts answering `challenge`.
    pub fn new(challenge: Challenge) -> DigestClient {
        DigestClient { challenge, nc: 0 }
    }

    /// The challenge being answered.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The `Authorization` / `Proxy-Authorization` header value for the next request under this
    /// challenge; `cnonce` is a fresh random client nonce (ignored without qop).
    pub fn authorization(
        &mut self,
        cred: &Credentials,
        target: &RequestTarget<'_>,
        cnonce: &str,
    ) -> String {
        self.nc = self.nc.wrapping_add(1).max(1);
        compute(&self.challenge, cred, target, cnonce, self.nc).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn response(
        c: &Challenge,
        cred: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let t = RequestTarget {
            method,
            uri,
            body: b"",
        };
        compute(c, cred, &t, cnonce, 1).0.to_string()
    }

    /// RFC 7616 §3.9.1, the same challenge once with SHA-256 and once with MD5.
    #[test]
    fn rfc7616_section_3_9_1() {
        let ch = |alg: &str| {
            format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
        };
        let cred = Credentials::new("Mufasa", "Circle of Life");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = Challenge::parse(&ch("SHA-256")).unwrap();
        assert_eq!(sha.qop, Some(Qop::Auth));
        assert_eq!(
            response(&sha, &cred, "GET", "/dir/index.html", cnonce),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let md5 = Challenge::parse(&ch("MD5")).unwrap();
        assert_eq!(
            response(&md5, &cred, "GET", "/dir/index.html", cnonce),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        // Offered both, the client picks SHA-256.
        assert_eq!(
            Challenge::best([ch("MD5").as_str(), ch("SHA-256").as_str()]).unwrap(),
            sha
        );
    }

    /// RFC 7616 §3.9.2: SHA-512-256 with userhash and a non-ASCII user name. The userhash and
    /// response printed in the RFC are not the hashes of its inputs; these are the corrected
    /// values of RFC errata 4897 (the userhash also checked with Python's hashlib).
    #[test]
    fn rfc7616_section_3_9_2_sha512_256_userhash() {
        let ch = Challenge::parse(
            "Digest realm=\"api@example.org\", qop=\"auth\", algorithm=SHA-512-256, \
nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", \
opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", charset=UTF-8, userhash=true",
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Sha512_256);
        assert!(ch.userhash);
        let cred = Credentials::new("J\u{e4}s\u{f8}n Doe", "Secret, or not?");
        let mut client = DigestClient::new(ch);
        let t = RequestTarget {
            method: "GET",
            uri: "/doe.json",
            body: b"",
        };
        let h = client.authorization(&cred, &t, "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v");
        assert_eq!(
            h,
            "Digest username=\"793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b\", \
realm=\"api@example.org\", nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", uri=\"/doe.json\", \
response=\"3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5\", algorithm=SHA-512-256, \
qop=auth, nc=00000001, cnonce=\"NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v\", \
opaque=\"HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS\", userhash=true"
        );
    }

    /// RFC 2617 §3.5 example (MD5, qop=auth) and the nonce count of the next request.
    #[test]
    fn rfc2617_example_and_nonce_count() {
        let ch = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5);
        let cred = Credentials::new("Mufasa", "Circle Of Life");
        let mut client = DigestClient::new(ch);
        let t = RequestTarget {
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        };
        let h = client.authorization(&cred, &t, "0a4f113b");
        assert!(
            h.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{h}"
        );
        assert!(h.contains("nc=00000001"));
        let h2 = client.authorization(&cred, &t, "0a4f113b");
        assert!(h2.contains("nc=00000002"), "{h2}");
    }

    /// RFC 2069 style (no qop): response = H(HA1:nonce:HA2); checked against the definition.
    #[test]
    fn no_qop_and_sess_follow_the_definitions() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let cred = Credentials::new("u", "p");
        let ha1 = hex::encode(Md5::digest(b"u:r:p"));
        let ha2 = hex::encode(Md5::digest(b"INVITE:sip:b@h"));
        let want = hex::encode(Md5::digest(format!("{ha1}:n:{ha2}")));
        assert_eq!(response(&ch, &cred, "INVITE", "sip:b@h", "c"), want);

        let ch =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256-sess, qop=auth")
                .unwrap();
        assert!(ch.session);
        let h = |s: String| hex::encode(Sha256::digest(s));
        let ha1 = h(format!("{}:n:c", h("u:r:p".into())));
        let ha2 = h("BYE:sip:b@h".into());
        let want = h(format!("{ha1}:n:00000001:c:auth:{ha2}"));
        assert_eq!(response(&ch, &cred, "BYE", "sip:b@h", "c"), want);
    }

    #[test]
    fn sha512_256_is_not_sha512() {
        // FIPS 180-4 SHA-512/256 of "abc".
        assert_eq!(
            Algorithm::Sha512_256.hash_hex(&[b"abc"]).as_str(),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
    }

    #[test]
    fn bad_challenges_are_errors() {
        for bad in [
            "Basic realm=\"x\"",
            "Digest realm=\"x\"",
            "Digest nonce=\"x\"",
            "Digest realm=\"x\", nonce=\"y\", algorithm=SHA-1",
            "Digest realm=\"x, nonce=\"y\"",
            "Digest realm",
            "Digest realm=\"x\", nonce=\"y\", qop=\"auth-conf\"",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_is_redacted_and_quotes_are_escaped() {
        let cred = Credentials::new("a\"b", "hunter2");
        assert!(!format!("{cred:?}").contains("hunter2"));
        let mut c = DigestClient::new(Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap());
        let h = c.authorization(
            &cred,
            &RequestTarget {
                method: "A",
                uri: "u",
                body: b"",
            },
            "c",
        );
        assert!(h.starts_with("Digest username=\"a\\\"b\""), "{h}");
    }
}
