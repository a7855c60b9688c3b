//! Header names (canonical and compact forms, case-insensitive) and the ordered header list with
//! typed accessors. Values are kept as written (unfolded); a parsed list keeps the received
//! text once and each line as numbers (a name id and a range of the text). The headers
//! `validate` checks are parsed once into a cache, and a parsed list indexes where each known
//! name occurs; any change to the list drops both. Other typed views parse on demand.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use bytestring::ByteString;

use super::grammar::{self, PResult, Sp, sws, token};
use super::typed::{
    AuthRef, AuthValue, CSeq, MediaType, NameAddr, NameAddrOf, NameAddrRef, Via, ViaOf, ViaRef,
};
use crate::{Error, Result};

macro_rules! header_names {
    ($( $variant:ident => $name:literal $(, $compact:literal)? ; )*) => {
        /// A header name. Known names compare case-insensitively and accept compact forms;
        /// unknown names are kept as written.
        #[derive(Clone, Debug, Eq)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = $name]
                $variant,
            )*
            /// Any other header, name as written.
            Other(ByteString),
        }

        impl HeaderName {
            /// Canonical spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $name, )*
                    HeaderName::Other(n) => n,
                }
            }

            /// Canonical spelling for known headers (used in error messages).
            pub(crate) fn static_name(&self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $name, )*
                    HeaderName::Other(_) => "extension",
                }
            }

            /// The position of a known name in the list of known names.
            fn id(&self) -> Option<usize> {
                let mut k = 0;
                $(
                    if matches!(self, HeaderName::$variant) {
                        return Some(k);
                    }
                    k += 1;
                )*
                let _ = k;
                None
            }

            fn compact(c: u8) -> Option<HeaderName> {
                let c = c.to_ascii_lowercase();
                $( $( if c == $compact { return Some(HeaderName::$variant); } )? )*
                None
            }

            /// Every known name, in id order.
            const ALL: [HeaderName; KNOWN] = [$( HeaderName::$variant, )*];
        }

        /// Number of known names.
        const KNOWN: usize = [$( stringify!($variant), )*].len();
    };
}

impl HeaderName {
    /// The known name spelled `s` (any case, compact forms too): only the names of that length
    /// are compared, the canonical spelling first.
    fn known(s: &str) -> Option<HeaderName> {
        macro_rules! among {
            ($($v:ident = $lit:literal),*) => {{
                match s {
                    $( $lit => return Some(HeaderName::$v), )*
                    _ => {}
                }
                $( if s.eq_ignore_ascii_case($lit) {
                    return Some(HeaderName::$v);
                } )*
                None
            }};
        }
        match s.len() {
            1 => HeaderName::compact(s.as_bytes()[0]),
            2 => among!(To = "To"),
            3 => among!(Via = "Via"),
            4 => among!(
                From = "From",
                CSeq = "CSeq",
                Date = "Date",
                RSeq = "RSeq",
                RAck = "RAck"
            ),
            5 => among!(Route = "Route", Allow = "Allow", Event = "Event"),
            6 => among!(Accept = "Accept", Server = "Server", MinSe = "Min-SE"),
            7 => among!(
                CallId = "Call-ID",
                Contact = "Contact",
                Require = "Require",
                Expires = "Expires",
                Subject = "Subject",
                Warning = "Warning"
            ),
            8 => among!(ReferTo = "Refer-To"),
            9 => among!(Supported = "Supported", Timestamp = "Timestamp"),
            10 => among!(UserAgent = "User-Agent"),
            11 => among!(
                Unsupported = "Unsupported",
                MinExpires = "Min-Expires",
                RetryAfter = "Retry-After",
                ReferredBy = "Referred-By"
            ),
            12 => among!(
                MaxForwards = "Max-Forwards",
                RecordRoute = "Record-Route",
                ContentType = "Content-Type"
            ),
            13 => among!(
                ProxyRequire = "Proxy-Require",
                Authorization = "Authorization"
            ),
            14 => among!(ContentLength = "Content-Length"),
            15 => among!(
                AcceptEncoding = "Accept-Encoding",
                AcceptLanguage = "Accept-Language",
                SessionExpires = "Session-Expires"
            ),
            16 => among!(
                ContentEncoding = "Content-Encoding",
                WwwAuthenticate = "WWW-Authenticate"
            ),
            18 => among!(ProxyAuthenticate = "Proxy-Authenticate"),
            19 => among!(
                ContentDisposition = "Content-Disposition",
                ProxyAuthorization = "Proxy-Authorization"
            ),
            _ => None,
        }
    }
}

header_names! {
    Via => "Via", b'v';
    From => "From", b'f';
    To => "To", b't';
    CallId => "Call-ID", b'i';
    CSeq => "CSeq";
    Contact => "Contact", b'm';
    MaxForwards => "Max-Forwards";
    Route => "Route";
    RecordRoute => "Record-Route";
    ContentType => "Content-Type", b'c';
    ContentLength => "Content-Length", b'l';
    ContentEncoding => "Content-Encoding", b'e';
    ContentDisposition => "Content-Disposition";
    Allow => "Allow";
    Supported => "Supported", b'k';
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    Date => "Date";
    Subject => "Subject", b's';
    UserAgent => "User-Agent";
    Server => "Server";
    Timestamp => "Timestamp";
    Warning => "Warning";
    RetryAfter => "Retry-After";
    Event => "Event", b'o';
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    SessionExpires => "Session-Expires", b'x';
    MinSe => "Min-SE";
    RSeq => "RSeq";
    RAck => "RAck";
}

impl HeaderName {
    /// The name for `s` (known or kept as an extension header).
    pub fn new(s: &str) -> HeaderName {
        HeaderName::known(s).unwrap_or_else(|| HeaderName::Other(ByteString::from(s)))
    }

    #[inline]
    pub(crate) fn from_wire(src: &ByteString, s: &str) -> HeaderName {
        HeaderName::known(s).unwrap_or_else(|| HeaderName::Other(src.slice_ref(s)))
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line as read from a [`Headers`]: its name and its value as written (folding
/// replaced by a space, outer white space trimmed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Name.
    pub name: &'a HeaderName,
    /// Value.
    pub value: &'a str,
}

/// Where a line's value is: a range of the text the list keeps (every unfolded line of a
/// parsed message: no copy and no reference count per line), or one of the list's own strings
/// (a value set by a builder, a folded value joined into one line, a line copied from another
/// list).
#[derive(Clone, Copy)]
enum Value {
    /// `text[start..end]`.
    At(u32, u32),
    /// `owned[k]`.
    Own(u32),
}

/// One header line of a [`Headers`]: plain numbers, so pushing one writes a few octets and
/// dropping a list drops no line.
#[derive(Clone, Copy)]
struct Line {
    /// A known name's id ([`HeaderName::id`]), or `KNOWN + k` for the extension name
    /// `others[k]`.
    name: u16,
    value: Value,
}

/// Every known name, by id.
static KNOWN_NAMES: [HeaderName; KNOWN] = HeaderName::ALL;

/// Where each known header name occurs: lines `first..end` hold every line of that name
/// (`0..0`: none), so a getter looks at those lines instead of scanning the whole list. Built
/// as a message's lines are parsed and dropped on any change; lists of more than 255 lines
/// are not indexed.
#[derive(Clone)]
struct Index {
    valid: bool,
    span: [(u8, u8); KNOWN],
}

impl Default for Index {
    fn default() -> Index {
        Index {
            valid: false,
            span: [(0, 0); KNOWN],
        }
    }
}

/// A value of the header line `line`, kept as a record of offsets into that line's value.
#[derive(Clone, Copy)]
struct At<R> {
    line: usize,
    rec: R,
}

/// Up to `N` values inline, more on the heap (a message has one or two Via values and one
/// Contact, so the cache allocates nothing for them).
struct Few<T, const N: usize> {
    inline: [Option<T>; N],
    more: Vec<T>,
}

impl<T: Copy, const N: usize> Few<T, N> {
    fn new() -> Self {
        Few {
            inline: [None; N],
            more: Vec::new(),
        }
    }

    fn push(&mut self, v: T) {
        match self.inline.iter_mut().find(|x| x.is_none()) {
            Some(slot) => *slot = Some(v),
            None => self.more.push(v),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        self.inline
            .iter()
            .map_while(Option::as_ref)
            .chain(self.more.iter())
    }
}

/// The headers `validate` checks, parsed once: Via, From, To and Contact as records of offsets
/// into their lines (views are built from them on access, owned values copied from those), the
/// others as values. `Err(())` marks a header that failed; its getter parses it again for the
/// exact error (a rare path).
struct Core {
    via: Result<Few<At<ViaOf<Sp>>, 4>, ()>,
    from: Result<At<NameAddrOf<Sp>>, ()>,
    to: Result<At<NameAddrOf<Sp>>, ()>,
    /// The line of a well-formed Call-ID.
    call_id: Option<usize>,
    cseq: Result<CSeq, ()>,
    max_forwards: Result<Option<u8>, ()>,
    content_length: Result<Option<u32>, ()>,
    contacts: Result<Few<At<NameAddrOf<Sp>>, 2>, ()>,
}

impl Core {
    /// Parses the cached headers of `h` straight into the box (no copy of the whole cache).
    #[inline(always)]
    fn build(h: &Headers) -> Box<Core> {
        let mut core = Box::new(Core {
            via: Ok(Few::new()),
            from: Err(()),
            to: Err(()),
            call_id: h.parse_call_id().ok(),
            cseq: h.parse_cseq().map_err(drop),
            max_forwards: h.parse_max_forwards().map_err(drop),
            content_length: h.parse_content_length().map_err(drop),
            contacts: Ok(Few::new()),
        });
        h.records_into(&mut core.via, h.via_items(), |base, v| {
            v.map(&|s| Sp::of(base, s))
        });
        core.from = h.name_addr_record(&HeaderName::From);
        core.to = h.name_addr_record(&HeaderName::To);
        if !h.contact_is_wildcard() {
            h.records_into(&mut core.contacts, h.contact_items(), |base, v| {
                v.map(&|s| Sp::of(base, s))
            });
        }
        core
    }
}

/// The values of every line of a comma-separated list header, each parsed when it is read (no
/// allocation): `Ok` values in order, then an `Err` at the first value that does not parse.
struct Items<'a, T, P> {
    headers: &'a Headers,
    next: usize,
    end: usize,
    /// The id of the known name whose lines are read (list headers are known names).
    id: usize,
    static_name: &'static str,
    cur: Option<(usize, &'a str)>,
    /// The value parser (a function item, so it is inlined into the loop).
    parse: P,
    empty_ok: bool,
    failed: bool,
    values: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T, P: Fn(&'a str) -> PResult<'a, T>> Items<'a, T, P> {
    /// The next value with the position of its line.
    #[inline(always)]
    fn next_at(&mut self) -> Option<Result<(usize, T)>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some((k, rest)) = self.cur {
                // Matched in place (no intermediate `Option` holding the value: each would be
                // one more copy of a view of up to 144 octets).
                if let Ok((r, v)) = (self.parse)(rest)
                    && let Ok(next) = grammar::list_next(r)
                {
                    self.cur = next.map(|n| (k, n));
                    return Some(Ok((k, v)));
                }
                self.failed = true;
                return Some(Err(Error::header(self.static_name, "syntax")));
            }
            let lines = &self.headers.lines;
            let k = (self.next..self.end)
                .find(|&k| lines.get(k).is_some_and(|l| usize::from(l.name) == self.id))?;
            self.next = k + 1;
            let v = sws(self.headers.value_at(k));
            if v.len() > u32::MAX as usize {
                self.failed = true;
                return Some(Err(Error::header(self.static_name, "value too long")));
            }
            if !(self.empty_ok && v.is_empty()) {
                self.cur = Some((k, v));
            }
        }
    }
}

impl<'a, T, P: Fn(&'a str) -> PResult<'a, T>> Iterator for Items<'a, T, P> {
    type Item = Result<T>;
    #[inline(always)]
    fn next(&mut self) -> Option<Result<T>> {
        self.next_at().map(|r| r.map(|(_, v)| v))
    }
}

fn contact_item(i: &str) -> PResult<'_, NameAddrRef<'_>> {
    // The first `expires` parameter must be delta-seconds: checked while the parameters are
    // scanned, not by reading them again.
    let mut seen = false;
    NameAddrRef::parse_with(i, true, |p| {
        if seen || !p.name.eq_ignore_ascii_case("expires") {
            return true;
        }
        seen = true;
        p.value
            .and_then(|e| grammar::number(e, u64::from(u32::MAX)))
            .is_some()
    })
}

fn route_item(i: &str) -> PResult<'_, NameAddrRef<'_>> {
    NameAddrRef::parse(i, false)
}

/// All headers of a message, in order.
///
/// A parsed list keeps the received text and each line as a range of it. The headers
/// [`Message::validate`](super::Message::validate) checks are parsed once into a cache, and a
/// parsed list indexes where each known name occurs; any change to the list drops both, so
/// the typed getters never see a stale value.
#[derive(Default)]
pub struct Headers {
    /// The text `Value::At` ranges are of (empty for a list built by hand).
    text: ByteString,
    lines: Vec<Line>,
    /// Values that are not ranges of `text`.
    owned: Vec<ByteString>,
    /// Extension header names, as written.
    others: Vec<HeaderName>,
    core: OnceLock<Box<Core>>,
    index: Index,
}

/// A clone has the same lines and index and an empty cache (it is rebuilt when a borrowing
/// getter or `validate` needs it).
impl Clone for Headers {
    fn clone(&self) -> Headers {
        Headers {
            text: self.text.clone(),
            lines: self.lines.clone(),
            owned: self.owned.clone(),
            others: self.others.clone(),
            core: OnceLock::new(),
            index: self.index.clone(),
        }
    }
}

/// Two lists are equal when their lines are: same names, same values, same order.
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A list of the given lines, indexed as a parsed one is.
impl FromIterator<(HeaderName, ByteString)> for Headers {
    fn from_iter<I: IntoIterator<Item = (HeaderName, ByteString)>>(lines: I) -> Headers {
        let mut headers = Headers::parsing(ByteString::new(), 0);
        for (name, value) in lines {
            headers.push_parsed_own(name, value);
        }
        headers.end_parse();
        headers
    }
}

/// Call-ID word octets (RFC 3261 §25.1): token characters and `()<>:\"/[]?{}`.
const CALL_ID_WORD: grammar::Class = grammar::class(true, b"-.!%*_+`'~()<>:\\\"/[]?{}");

/// Whether `v` is a Call-ID, `word ["@" word]`: one scan of the first word, and of the second
/// when an `@` ends the first.
fn is_call_id(v: &str) -> bool {
    let b = v.as_bytes();
    let first = grammar::span_bytes(b, &CALL_ID_WORD);
    match b.get(first) {
        None => first > 0,
        Some(b'@') if first > 0 => {
            let rest = b.get(first + 1..).unwrap_or_default();
            let second = grammar::span_bytes(rest, &CALL_ID_WORD);
            second > 0 && second == rest.len()
        }
        Some(_) => false,
    }
}

fn bad(name: &HeaderName) -> impl Fn(nom::Err<()>) -> Error + '_ {
    move |_| Error::header(name.static_name(), "syntax")
}

impl Headers {
    /// An empty list.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// An empty list with room for `n` lines.
    pub fn with_capacity(n: usize) -> Headers {
        Headers {
            lines: Vec::with_capacity(n),
            ..Headers::default()
        }
    }

    /// An empty list for the lines of a header section parsed from `text`, with room for
    /// `n` lines; [`Headers::end_parse`] ends it.
    pub(crate) fn parsing(text: ByteString, n: usize) -> Headers {
        Headers {
            text,
            lines: Vec::with_capacity(n),
            ..Headers::default()
        }
    }

    /// The number of a line's name, adding an extension name to `others`.
    #[inline(always)]
    fn name_number(&mut self, name: HeaderName) -> u16 {
        match name.id() {
            Some(id) => id as u16,
            None => {
                self.others.push(name);
                (KNOWN + self.others.len() - 1) as u16
            }
        }
    }

    /// A value of the list's own.
    fn own_value(&mut self, value: ByteString) -> Value {
        self.owned.push(value);
        Value::Own((self.owned.len() - 1) as u32)
    }

    /// The number of the name of a parsed line about to be appended, indexed (only the first
    /// 255 lines can be indexed; a longer list is not).
    #[inline(always)]
    fn indexed_name(&mut self, name: HeaderName) -> u16 {
        let number = self.name_number(name);
        let k = self.lines.len();
        if let Some(span) = self.index.span.get_mut(usize::from(number))
            && k < usize::from(u8::MAX)
        {
            let k = k as u8;
            if span.1 == 0 {
                span.0 = k;
            }
            span.1 = k + 1;
        }
        number
    }

    /// Appends a parsed line whose value is `text[start..end]` (the parser refuses a text of
    /// 4 GiB or more, so both fit in 32 bits).
    #[inline(always)]
    pub(crate) fn push_parsed(&mut self, name: HeaderName, start: usize, end: usize) {
        let name = self.indexed_name(name);
        // Built where it is stored, from the numbers as they are: a value built earlier and
        // kept across the name lookup was spilled in pieces and read back whole, which stalls
        // store-to-load forwarding on every line.
        self.lines.push(Line {
            name,
            value: Value::At(start as u32, end as u32),
        });
    }

    /// Appends a parsed line with a value of its own (a folded line, joined).
    pub(crate) fn push_parsed_own(&mut self, name: HeaderName, value: ByteString) {
        let name = self.indexed_name(name);
        let value = self.own_value(value);
        self.lines.push(Line { name, value });
    }

    /// Ends a parsed list: its index is valid from here (up to 255 lines).
    pub(crate) fn end_parse(&mut self) {
        self.index.valid = self.lines.len() <= usize::from(u8::MAX);
    }

    /// A change: drops the parse-once cache and the index.
    fn changing(&mut self) {
        self.core.take();
        self.index.valid = false;
    }

    /// A line with `name` and a value of the list's own.
    fn own_line(&mut self, name: HeaderName, value: ByteString) -> Line {
        Line {
            name: self.name_number(name),
            value: self.own_value(value),
        }
    }

    /// The name of `line`, a line of this list.
    fn name_of(&self, line: &Line) -> &HeaderName {
        let k = usize::from(line.name);
        KNOWN_NAMES
            .get(k)
            .or_else(|| self.others.get(k - KNOWN))
            .unwrap_or(&KNOWN_NAMES[0])
    }

    /// Whether `line` is a `name` line.
    #[inline]
    fn is(&self, line: &Line, name: &HeaderName) -> bool {
        match name.id() {
            Some(id) => usize::from(line.name) == id,
            None => usize::from(line.name) >= KNOWN && self.name_of(line) == name,
        }
    }

    /// Iterates over all headers in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Header<'_>> + ExactSizeIterator + '_ {
        self.lines.iter().map(|l| Header {
            name: self.name_of(l),
            value: self.value_of(l),
        })
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.position(name).map(|k| self.value_at(k))
    }

    /// All values of `name` in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.positions(name).map(|k| self.value_at(k))
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &HeaderName) -> bool {
        self.position(name).is_some()
    }

    /// The position of the first `name` line.
    pub fn position(&self, name: &HeaderName) -> Option<usize> {
        self.positions(name).next()
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<ByteString>) {
        self.insert(usize::MAX, name, value);
    }

    /// Inserts a header before all others (a new top Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<ByteString>) {
        self.insert(0, name, value);
    }

    /// Inserts a header at position `k` (at the end when `k` is past it).
    pub fn insert(&mut self, k: usize, name: HeaderName, value: impl Into<ByteString>) {
        self.changing();
        let line = self.own_line(name, value.into());
        self.lines.insert(k.min(self.lines.len()), line);
    }

    /// Removes every `name` header.
    pub fn remove(&mut self, name: &HeaderName) {
        self.changing();
        let mut lines = std::mem::take(&mut self.lines);
        lines.retain(|l| !self.is(l, name));
        self.lines = lines;
        self.collect_garbage();
    }

    /// Replaces all `name` headers with one value (at the position of the first, else at the
    /// end).
    pub fn set(&mut self, name: HeaderName, value: impl Into<ByteString>) {
        let value = value.into();
        match self.position(&name) {
            Some(k) => {
                self.changing();
                let value = self.own_value(value);
                // Lines before the first `name` line stay, so it is still at `k`.
                let mut lines = std::mem::take(&mut self.lines);
                let mut seen = 0;
                lines.retain(|l| {
                    !self.is(l, &name) || {
                        seen += 1;
                        seen == 1
                    }
                });
                if let Some(line) = lines.get_mut(k) {
                    line.value = value;
                }
                self.lines = lines;
                self.collect_garbage();
            }
            None => self.push(name, value),
        }
    }

    /// Drops the strings and names no line refers to any more, once they are more than the
    /// lines (a list changed again and again does not grow without bound).
    fn collect_garbage(&mut self) {
        if self.owned.len() + self.others.len() <= 2 * self.lines.len() + 8 {
            return;
        }
        let mut owned = Vec::new();
        let mut others = Vec::new();
        let mut lines = std::mem::take(&mut self.lines);
        for line in &mut lines {
            if let Value::Own(k) = line.value {
                owned.push(self.owned.get(k as usize).cloned().unwrap_or_default());
                line.value = Value::Own((owned.len() - 1) as u32);
            }
            if usize::from(line.name) >= KNOWN {
                others.push(self.name_of(line).clone());
                line.name = (KNOWN + others.len() - 1) as u16;
            }
        }
        self.lines = lines;
        self.owned = owned;
        self.others = others;
    }

    /// Copies every `name` header of `from`, in order, to the end of this list.
    pub fn copy_from(&mut self, from: &Headers, name: &HeaderName) {
        self.changing();
        for k in from.positions(name) {
            if let Some(line) = from.lines.get(k) {
                let value = from.src_at(k).slice_ref(from.value_at(k));
                let line = self.own_line(from.name_of(line).clone(), value);
                self.lines.push(line);
            }
        }
    }

    /// The parse-once cache, built on first use.
    fn core(&self) -> &Core {
        self.core.get_or_init(|| Core::build(self))
    }

    /// The cache if it was built (by `validate` or a getter) and nothing changed since.
    fn cached(&self) -> Option<&Core> {
        self.core.get().map(|c| &**c)
    }

    /// The value of `line`, a line of this list.
    fn value_of(&self, line: &Line) -> &str {
        match line.value {
            Value::At(start, end) => self
                .text
                .get(start as usize..end as usize)
                .unwrap_or_default(),
            Value::Own(k) => self.owned.get(k as usize).map_or("", |v| &**v),
        }
    }

    /// The value of line `k` (empty past the end).
    fn value_at(&self, k: usize) -> &str {
        self.lines.get(k).map_or("", |l| self.value_of(l))
    }

    /// The shared string the value of line `k` is part of (owned values are sliced from it).
    fn src_at(&self, k: usize) -> &ByteString {
        static EMPTY: ByteString = ByteString::from_static("");
        match self.lines.get(k).map(|l| l.value) {
            Some(Value::At(..)) => &self.text,
            Some(Value::Own(v)) => self.owned.get(v as usize).unwrap_or(&EMPTY),
            None => &EMPTY,
        }
    }

    /// The positions of the lines that can hold `name`: its indexed span, else all of them.
    fn candidate_range(&self, name: &HeaderName) -> Range<usize> {
        match name.id() {
            Some(id) if self.index.valid => {
                let (first, end) = self.index.span[id];
                usize::from(first)..usize::from(end).min(self.lines.len())
            }
            _ => 0..self.lines.len(),
        }
    }

    /// The positions of the `name` lines.
    fn positions<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = usize> + 'a {
        self.candidate_range(name)
            .filter(move |&k| self.lines.get(k).is_some_and(|l| self.is(l, name)))
    }

    fn single_at(&self, name: &HeaderName) -> Result<Option<usize>> {
        // An indexed name's span runs from its first line to just past its last: one line
        // when it is one long, none when empty, more otherwise (no line needs looking at).
        if let Some(id) = name.id()
            && self.index.valid
        {
            let (first, end) = self.index.span[id];
            return match end.saturating_sub(first) {
                0 => Ok(None),
                1 => Ok(Some(usize::from(first))),
                _ => Err(Error::MultipleValues(name.static_name())),
            };
        }
        let mut it = self.positions(name);
        let first = it.next();
        if it.next().is_some() {
            return Err(Error::MultipleValues(name.static_name()));
        }
        Ok(first)
    }

    /// The value of a header that may occur once, with the string it is part of.
    fn single(&self, name: &HeaderName) -> Result<Option<(&ByteString, &str)>> {
        Ok(self
            .single_at(name)?
            .map(|k| (self.src_at(k), self.value_at(k))))
    }

    fn required_at(&self, name: &HeaderName) -> Result<usize> {
        self.single_at(name)?
            .ok_or(Error::MissingHeader(name.static_name()))
    }

    /// Parses every value of a comma-list header with `parse_line` (all lines, in order; it
    /// gets the string each value is part of and the value).
    fn list<T>(
        &self,
        name: &HeaderName,
        mut parse_line: impl FnMut(
            &ByteString,
            &str,
            &mut Vec<T>,
        ) -> std::result::Result<(), nom::Err<()>>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for k in self.positions(name) {
            parse_line(self.src_at(k), self.value_at(k), &mut out).map_err(bad(name))?;
        }
        Ok(out)
    }

    /// The values of the `name` lines, parsed with `parse` as they are read.
    #[inline]
    fn items<'a, T, P: Fn(&'a str) -> PResult<'a, T>>(
        &'a self,
        name: &HeaderName,
        empty_ok: bool,
        parse: P,
    ) -> Items<'a, T, P> {
        let range = self.candidate_range(name);
        Items {
            headers: self,
            next: range.start,
            end: range.end,
            id: name.id().unwrap_or(usize::MAX),
            static_name: name.static_name(),
            cur: None,
            parse,
            empty_ok,
            failed: false,
            values: std::marker::PhantomData,
        }
    }

    /// Records of every value of `items`, pushed into `out` (an `Err(())` if one fails).
    #[inline(always)]
    fn records_into<'a, T, R: Copy, const N: usize>(
        &'a self,
        out: &mut std::result::Result<Few<At<R>, N>, ()>,
        mut items: Items<'a, T, impl Fn(&'a str) -> PResult<'a, T>>,
        rec: impl Fn(&'a str, T) -> R,
    ) {
        while let Some(item) = items.next_at() {
            match (item, out.as_mut()) {
                (Ok((line, v)), Ok(few)) => few.push(At {
                    line,
                    rec: rec(self.value_at(line), v),
                }),
                _ => {
                    *out = Err(());
                    return;
                }
            }
        }
    }

    /// Owned copies of every value of `items`.
    fn owned<'a, T, O>(
        &'a self,
        mut items: Items<'a, T, impl Fn(&'a str) -> PResult<'a, T>>,
        own: impl Fn(&T, &'a ByteString) -> O,
    ) -> Result<Vec<O>> {
        let mut out = Vec::new();
        while let Some(item) = items.next_at() {
            let (line, v) = item?;
            out.push(own(&v, self.src_at(line)));
        }
        Ok(out)
    }

    fn via_items<'a>(
        &'a self,
    ) -> Items<'a, ViaRef<'a>, impl Fn(&'a str) -> PResult<'a, ViaRef<'a>>> {
        self.items(&HeaderName::Via, false, ViaRef::parse)
    }

    fn contact_items<'a>(
        &'a self,
    ) -> Items<'a, NameAddrRef<'a>, impl Fn(&'a str) -> PResult<'a, NameAddrRef<'a>>> {
        self.items(&HeaderName::Contact, false, contact_item)
    }

    /// The exact error of a list header whose cached value failed.
    fn first_error<'a, T>(
        mut items: Items<'a, T, impl Fn(&'a str) -> PResult<'a, T>>,
        name: &'static str,
    ) -> Error {
        items
            .find_map(Result::err)
            .unwrap_or(Error::header(name, "syntax"))
    }

    /// All Via values, top first.
    pub fn via(&self) -> Result<Vec<Via>> {
        Ok(self.via_at()?.map(|(k, v)| v.own(self.src_at(k))).collect())
    }

    fn via_at(&self) -> Result<impl Iterator<Item = (usize, ViaRef<'_>)> + Clone + '_> {
        match &self.core().via {
            Ok(few) => Ok(few.iter().map(|a| {
                // The line's value looked up once, not once per part of the view.
                let base = self.value_at(a.line);
                (a.line, a.rec.map(&|s| s.get(base)))
            })),
            Err(()) => Err(Self::first_error(self.via_items(), "Via")),
        }
    }

    /// All Via values, top first, as views of the parse-once cache (no copy, no allocation).
    pub fn via_ref(&self) -> Result<impl Iterator<Item = ViaRef<'_>> + Clone + '_> {
        Ok(self.via_at()?.map(|(_, v)| v))
    }

    /// The top Via value (only the top value needs to be well-formed).
    pub fn top_via(&self) -> Result<Via> {
        if let Ok(mut all) = self.via_at() {
            return all
                .next()
                .map(|(k, v)| v.own(self.src_at(k)))
                .ok_or(Error::MissingHeader("Via"));
        }
        let k = self
            .positions(&HeaderName::Via)
            .next()
            .ok_or(Error::MissingHeader("Via"))?;
        let v = self.value_at(k);
        match ViaRef::parse(sws(v)) {
            Ok((rest, via)) if grammar::list_next(rest).is_ok() => Ok(via.own(self.src_at(k))),
            _ => Err(Error::header("Via", "syntax")),
        }
    }

    /// Checks a header `validate` needs (Via, From, To or Contact) against the parse-once
    /// cache without building a view; the getter gives the exact error of a bad one.
    pub(crate) fn check(&self, name: &HeaderName) -> Result<()> {
        let c = self.core();
        let ok = match name {
            HeaderName::Via => match &c.via {
                Ok(v) if v.iter().next().is_none() => return Err(Error::MissingHeader("Via")),
                v => v.is_ok(),
            },
            HeaderName::From => c.from.is_ok(),
            HeaderName::To => c.to.is_ok(),
            HeaderName::Contact => c.contacts.is_ok(),
            _ => true,
        };
        if ok {
            return Ok(());
        }
        match name {
            HeaderName::Via => self.via_ref().map(drop),
            HeaderName::From => self.from_ref().map(drop),
            HeaderName::To => self.to_ref().map(drop),
            _ => self.contacts_ref().map(drop),
        }
    }

    /// The From or To value at its line.
    fn name_addr_at(&self, name: &HeaderName) -> Result<(usize, NameAddrRef<'_>)> {
        let k = self.required_at(name)?;
        match NameAddrRef::parse(self.value_at(k), true) {
            Ok((rest, n)) if sws(rest).is_empty() => Ok((k, n)),
            _ => Err(Error::header(name.static_name(), "syntax")),
        }
    }

    /// The record of the From or To value (parsed and turned into offsets in one place, so
    /// the view is not moved out of a result first).
    #[inline(always)]
    fn name_addr_record(&self, name: &HeaderName) -> std::result::Result<At<NameAddrOf<Sp>>, ()> {
        let line = self.required_at(name).map_err(drop)?;
        let base = self.value_at(line);
        match NameAddrRef::parse(base, true) {
            Ok((rest, v)) if sws(rest).is_empty() => Ok(At {
                line,
                rec: v.map(&|s| Sp::of(base, s)),
            }),
            _ => Err(()),
        }
    }

    /// The view of a cached From/To record.
    #[inline(always)]
    fn name_addr_view(&self, a: &At<NameAddrOf<Sp>>) -> NameAddrRef<'_> {
        let base = self.value_at(a.line);
        a.rec.map(&|s| s.get(base))
    }

    /// The cached From or To record, or the exact error of a value that failed (parsed
    /// again, a rare path). A reference, so no view is moved out of a `Result`.
    #[inline(always)]
    fn name_addr_cached<'a>(
        &'a self,
        cached: &'a std::result::Result<At<NameAddrOf<Sp>>, ()>,
        name: &HeaderName,
    ) -> Result<&'a At<NameAddrOf<Sp>>> {
        cached.as_ref().map_err(|()| self.name_addr_error(name))
    }

    /// The exact error of a From/To whose cached parse failed.
    #[cold]
    fn name_addr_error(&self, name: &HeaderName) -> Error {
        self.name_addr_at(name)
            .err()
            .unwrap_or(Error::header(name.static_name(), "syntax"))
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr> {
        let a = self.name_addr_cached(&self.core().from, &HeaderName::From)?;
        Ok(self.name_addr_view(a).own(self.src_at(a.line)))
    }

    /// From, a view of the parse-once cache.
    pub fn from_ref(&self) -> Result<NameAddrRef<'_>> {
        let a = self.name_addr_cached(&self.core().from, &HeaderName::From)?;
        Ok(self.name_addr_view(a))
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr> {
        let a = self.name_addr_cached(&self.core().to, &HeaderName::To)?;
        Ok(self.name_addr_view(a).own(self.src_at(a.line)))
    }

    /// To, a view of the parse-once cache.
    pub fn to_ref(&self) -> Result<NameAddrRef<'_>> {
        let a = self.name_addr_cached(&self.core().to, &HeaderName::To)?;
        Ok(self.name_addr_view(a))
    }

    /// The line of a well-formed Call-ID.
    fn parse_call_id(&self) -> Result<usize> {
        let k = self.required_at(&HeaderName::CallId)?;
        if is_call_id(self.value_at(k)) {
            Ok(k)
        } else {
            Err(Error::header("Call-ID", "syntax"))
        }
    }

    /// The line of the Call-ID: from the cache, else checked now.
    fn call_id_line(&self) -> Result<usize> {
        match self.cached().and_then(|c| c.call_id) {
            Some(k) => Ok(k),
            None => self.parse_call_id(),
        }
    }

    /// Call-ID (`word ["@" word]`).
    pub fn call_id(&self) -> Result<&str> {
        Ok(self.value_at(self.call_id_line()?))
    }

    /// Call-ID as a shared string (a slice of the message, no copy).
    pub fn call_id_shared(&self) -> Result<ByteString> {
        let k = self.call_id_line()?;
        Ok(self.src_at(k).slice_ref(self.value_at(k)))
    }

    fn parse_cseq(&self) -> Result<CSeq> {
        let k = self.required_at(&HeaderName::CSeq)?;
        match CSeq::parse(self.src_at(k), self.value_at(k)) {
            Ok((rest, c)) if sws(rest).is_empty() => Ok(c),
            _ => Err(Error::header(
                "CSeq",
                "syntax or sequence number out of range",
            )),
        }
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq> {
        match self.cached().map(|c| &c.cseq) {
            Some(Ok(v)) => Ok(v.clone()),
            _ => self.parse_cseq(),
        }
    }

    /// CSeq, borrowed from the parse-once cache.
    pub fn cseq_ref(&self) -> Result<&CSeq> {
        match &self.core().cseq {
            Ok(v) => Ok(v),
            Err(()) => Err(self
                .parse_cseq()
                .err()
                .unwrap_or(Error::header("CSeq", "syntax"))),
        }
    }

    /// Whether Contact is `*` (REGISTER removal).
    pub fn contact_is_wildcard(&self) -> bool {
        self.get(&HeaderName::Contact) == Some("*")
    }

    fn contacts_at(&self) -> Result<impl Iterator<Item = (usize, NameAddrRef<'_>)> + Clone + '_> {
        match &self.core().contacts {
            Ok(few) => Ok(few.iter().map(|a| {
                // The line's value looked up once, not once per part of the view.
                let base = self.value_at(a.line);
                (a.line, a.rec.map(&|s| s.get(base)))
            })),
            Err(()) => Err(Self::first_error(self.contact_items(), "Contact")),
        }
    }

    /// All Contact values (empty for `*`).
    pub fn contacts(&self) -> Result<Vec<NameAddr>> {
        Ok(self
            .contacts_at()?
            .map(|(k, v)| v.own(self.src_at(k)))
            .collect())
    }

    /// All Contact values (none for `*`), as views of the parse-once cache.
    pub fn contacts_ref(&self) -> Result<impl Iterator<Item = NameAddrRef<'_>> + Clone + '_> {
        Ok(self.contacts_at()?.map(|(_, v)| v))
    }

    /// The first Contact value.
    pub fn contact(&self) -> Result<Option<NameAddr>> {
        Ok(self
            .contacts_at()?
            .next()
            .map(|(k, v)| v.own(self.src_at(k))))
    }

    fn parse_max_forwards(&self) -> Result<Option<u8>> {
        self.number(&HeaderName::MaxForwards, 255)
            .map(|v| v.map(|v| v as u8))
    }

    /// Max-Forwards (0..=255).
    pub fn max_forwards(&self) -> Result<Option<u8>> {
        match self.cached().map(|c| c.max_forwards) {
            Some(Ok(v)) => Ok(v),
            _ => self.parse_max_forwards(),
        }
    }

    /// Expires (delta-seconds, at most 2**32-1).
    pub fn expires(&self) -> Result<Option<u32>> {
        self.number(&HeaderName::Expires, u64::from(u32::MAX))
            .map(|v| v.map(|v| v as u32))
    }

    fn parse_content_length(&self) -> Result<Option<u32>> {
        self.number(&HeaderName::ContentLength, u64::from(u32::MAX))
            .map(|v| v.map(|v| v as u32))
    }

    /// Content-Length (builds the parse-once cache: the framing reads it before `validate`).
    pub fn content_length(&self) -> Result<Option<u32>> {
        match self.core().content_length {
            Ok(v) => Ok(v),
            Err(()) => self.parse_content_length(),
        }
    }

    fn number(&self, name: &HeaderName, max: u64) -> Result<Option<u64>> {
        match self.single_at(name)? {
            None => Ok(None),
            Some(k) => grammar::number(self.value_at(k), max)
                .map(Some)
                .ok_or(Error::header(name.static_name(), "not a number in range")),
        }
    }

    /// Route values in order.
    pub fn route(&self) -> Result<Vec<NameAddr>> {
        self.owned(
            self.items(&HeaderName::Route, false, route_item),
            |v, src| v.own(src),
        )
    }

    /// Route values in order, each parsed as it is read (an `Err` item ends a bad list).
    #[inline]
    pub fn route_ref(&self) -> impl Iterator<Item = Result<NameAddrRef<'_>>> + '_ {
        self.items(&HeaderName::Route, false, route_item)
    }

    /// Record-Route values in order.
    pub fn record_route(&self) -> Result<Vec<NameAddr>> {
        self.owned(
            self.items(&HeaderName::RecordRoute, false, route_item),
            |v, src| v.own(src),
        )
    }

    /// Record-Route values in order, each parsed as it is read (an `Err` item ends a bad list).
    #[inline]
    pub fn record_route_ref(&self) -> impl Iterator<Item = Result<NameAddrRef<'_>>> + '_ {
        self.items(&HeaderName::RecordRoute, false, route_item)
    }

    /// Content-Type.
    pub fn content_type(&self) -> Result<Option<MediaType>> {
        match self.single(&HeaderName::ContentType)? {
            None => Ok(None),
            Some((src, v)) => match MediaType::parse(src, v) {
                Ok((rest, m)) if sws(rest).is_empty() => Ok(Some(m)),
                _ => Err(Error::header("Content-Type", "syntax")),
            },
        }
    }

    /// Accept entries (empty if absent or empty).
    pub fn accept(&self) -> Result<Vec<MediaType>> {
        self.list(&HeaderName::Accept, |src, v, out| {
            if v.trim().is_empty() {
                Ok(())
            } else {
                grammar::list(v, |i| MediaType::parse(src, i), out)
            }
        })
    }

    fn tokens(&self, name: &HeaderName) -> Result<Vec<ByteString>> {
        self.owned(self.items(name, true, token), |t, src| {
            grammar::option_word(src, t)
        })
    }

    /// Allow (methods, as tokens).
    pub fn allow(&self) -> Result<Vec<ByteString>> {
        self.tokens(&HeaderName::Allow)
    }

    /// Allow, each token read as it is reached (an `Err` item ends a bad list).
    #[inline]
    pub fn allow_ref(&self) -> impl Iterator<Item = Result<&str>> + '_ {
        self.items(&HeaderName::Allow, true, token)
    }

    /// Supported option tags.
    pub fn supported(&self) -> Result<Vec<ByteString>> {
        self.tokens(&HeaderName::Supported)
    }

    /// Supported option tags, each read as it is reached.
    #[inline]
    pub fn supported_ref(&self) -> impl Iterator<Item = Result<&str>> + '_ {
        self.items(&HeaderName::Supported, true, token)
    }

    /// Require option tags.
    pub fn require(&self) -> Result<Vec<ByteString>> {
        self.tokens(&HeaderName::Require)
    }

    /// Require option tags, each read as it is reached.
    #[inline]
    pub fn require_ref(&self) -> impl Iterator<Item = Result<&str>> + '_ {
        self.items(&HeaderName::Require, true, token)
    }

    /// Proxy-Require option tags.
    pub fn proxy_require(&self) -> Result<Vec<ByteString>> {
        self.tokens(&HeaderName::ProxyRequire)
    }

    fn auth(&self, name: &HeaderName) -> Result<Vec<AuthValue>> {
        self.owned(self.items(name, false, AuthRef::parse), |a, src| {
            AuthValue::own(a, src)
        })
    }

    /// WWW-Authenticate challenges.
    pub fn www_authenticate(&self) -> Result<Vec<AuthValue>> {
        self.auth(&HeaderName::WwwAuthenticate)
    }

    /// WWW-Authenticate challenges, each parsed as it is read.
    #[inline]
    pub fn www_authenticate_ref(&self) -> impl Iterator<Item = Result<AuthRef<'_>>> + '_ {
        self.items(&HeaderName::WwwAuthenticate, false, AuthRef::parse)
    }

    /// Proxy-Authenticate challenges.
    pub fn proxy_authenticate(&self) -> Result<Vec<AuthValue>> {
        self.auth(&HeaderName::ProxyAuthenticate)
    }

    /// Proxy-Authenticate challenges, each parsed as it is read.
    #[inline]
    pub fn proxy_authenticate_ref(&self) -> impl Iterator<Item = Result<AuthRef<'_>>> + '_ {
        self.items(&HeaderName::ProxyAuthenticate, false, AuthRef::parse)
    }

    /// Authorization credentials.
    pub fn authorization(&self) -> Result<Vec<AuthValue>> {
        self.auth(&HeaderName::Authorization)
    }

    /// Authorization credentials, each parsed as it is read.
    #[inline]
    pub fn authorization_ref(&self) -> impl Iterator<Item = Result<AuthRef<'_>>> + '_ {
        self.items(&HeaderName::Authorization, false, AuthRef::parse)
    }

    /// Proxy-Authorization credentials.
    pub fn proxy_authorization(&self) -> Result<Vec<AuthValue>> {
        self.auth(&HeaderName::ProxyAuthorization)
    }

    /// Proxy-Authorization credentials, each parsed as it is read.
    #[inline]
    pub fn proxy_authorization_ref(&self) -> impl Iterator<Item = Result<AuthRef<'_>>> + '_ {
        self.items(&HeaderName::ProxyAuthorization, false, AuthRef::parse)
    }

    /// Sets the tag of the To header (appends `;tag=` when there is none, keeping the value as
    /// written).
    pub fn set_to_tag(&mut self, tag: &str) -> Result<()> {
        let mut to = self.to()?;
        let value = if to.tag().is_some() {
            to.set_tag(tag);
            ByteString::from(to.to_string())
        } else {
            let old = self
                .get(&HeaderName::To)
                .map(|v| v.to_string())
                .unwrap_or_default();
            ByteString::from(format!("{old};tag={tag}"))
        };
        self.set(HeaderName::To, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HostOf, UriOf};
    use super::*;

    #[test]
    fn every_known_name_is_found_in_any_case() {
        for n in &HeaderName::ALL {
            let name = n.as_str();
            assert_eq!(HeaderName::known(name).as_ref(), Some(n), "{name}");
            let upper = name.to_ascii_uppercase();
            assert_eq!(HeaderName::known(&upper).as_ref(), Some(n), "{upper}");
        }
        assert_eq!(HeaderName::known("Via2"), None);
        assert_eq!(HeaderName::known("q"), None);
    }

    #[test]
    fn names_are_case_insensitive_with_compact_forms() {
        assert_eq!(HeaderName::new("MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::new("v"), HeaderName::Via);
        assert_eq!(HeaderName::new("I"), HeaderName::CallId);
        assert_eq!(HeaderName::new("x-foo"), HeaderName::new("X-FOO"));
        assert_eq!(HeaderName::new("x-foo").as_str(), "x-foo");
        assert_ne!(HeaderName::new("x-foo"), HeaderName::Via);
    }

    #[test]
    fn parse_once_cache_follows_every_change() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
        h.push(HeaderName::From, "<sip:alice@example.com>;tag=1");
        h.push(HeaderName::CSeq, "1 INVITE");
        assert_eq!(h.via_ref().unwrap().count(), 1);
        assert_eq!(h.from_ref().unwrap().tag(), Some("1"));
        assert_eq!(
            h.via().unwrap()[0].branch(),
            h.via_ref().unwrap().next().unwrap().branch()
        );
        assert!(matches!(h.to_ref(), Err(Error::MissingHeader("To"))));
        // Every change drops the cache.
        h.insert(
            0,
            HeaderName::Via,
            "SIP/2.0/TCP b.example.com;branch=z9hG4bK2",
        );
        assert_eq!(h.via().unwrap().len(), 2);
        assert_eq!(
            h.via_ref().unwrap().next().unwrap().branch(),
            Some("z9hG4bK2")
        );
        h.remove(&HeaderName::Via);
        h.insert(
            0,
            HeaderName::Via,
            "SIP/2.0/TCP b.example.com;branch=z9hG4bK2",
        );
        h.insert(1, HeaderName::Via, "SIP/2.0/UDP a.example.com;branch");
        assert!(h.via().is_err());
        assert_eq!(
            h.via_ref().err().map(|e| e.to_string()),
            h.via().err().map(|e| e.to_string())
        );
        assert_eq!(h.top_via().unwrap().branch(), Some("z9hG4bK2"));
        h.push(HeaderName::From, "<sip:eve@example.com>");
        assert!(matches!(h.from(), Err(Error::MultipleValues("From"))));
        assert!(matches!(h.from_ref(), Err(Error::MultipleValues("From"))));
        h.set(HeaderName::CSeq, "2 BYE");
        assert_eq!(h.cseq_ref().unwrap().seq, 2);
        assert_eq!(h.cseq().unwrap().method, super::super::Method::Bye);
        // A clone compares equal and answers the same.
        let c = h.clone();
        assert_eq!(c, h);
        assert_eq!(c.cseq().unwrap(), h.cseq().unwrap());
    }

    #[test]
    fn the_index_finds_every_line_and_follows_changes() {
        let line = |n: &str, v: &str| (HeaderName::new(n), ByteString::from(v));
        let lines = vec![
            line("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
            line("t", "<sip:b@example.com>"),
            line("v", "SIP/2.0/UDP b;branch=z9hG4bK2"),
            line("X-Other", "1"),
            line("Subject", "s"),
            line("x-other", "2"),
            line("VIA", "SIP/2.0/UDP c;branch=z9hG4bK3"),
            line("Max-Forwards", "70"),
            line("Expires", "5"),
            line("max-forwards", "69"),
        ];
        // Past 255 lines the list is not indexed and answers the same by scanning.
        let long: Vec<_> = (0..300)
            .map(|k| line(if k % 7 == 0 { "Via" } else { "X-Pad" }, "x"))
            .collect();
        for lines in [lines.clone(), long] {
            let indexed: Headers = lines.iter().cloned().collect();
            let mut plain = Headers::new();
            for (name, value) in &lines {
                plain.push(name.clone(), value.clone());
            }
            let other = HeaderName::new("X-OTHER");
            for name in HeaderName::ALL.iter().chain([&other]) {
                let all = |h: &Headers| h.get_all(name).map(str::to_owned).collect::<Vec<_>>();
                assert_eq!(all(&indexed), all(&plain), "{name}");
                assert_eq!(indexed.get(name), plain.get(name), "{name}");
                assert_eq!(indexed.contains(name), plain.contains(name), "{name}");
            }
            assert_eq!(indexed.clone().via().ok(), plain.via().ok());
            // Single-valued getters: absent, one line, two lines (an error).
            let err = |r: Result<Option<u32>>| r.map_err(|e| e.to_string());
            assert_eq!(err(indexed.expires()), err(plain.expires()));
            assert_eq!(err(indexed.content_length()), err(plain.content_length()));
            assert_eq!(
                indexed.max_forwards().map_err(|e| e.to_string()),
                plain.max_forwards().map_err(|e| e.to_string())
            );
        }
        let mut h: Headers = lines.into_iter().collect();
        assert_eq!(h.via_ref().unwrap().count(), 3);
        h.push(HeaderName::Via, "SIP/2.0/UDP d;branch=z9hG4bK4");
        assert_eq!(h.get_all(&HeaderName::Via).count(), 4);
        h.insert(0, HeaderName::From, "<sip:a@example.com>;tag=1");
        assert_eq!(h.from().unwrap().tag(), Some("1"));
        assert_eq!(
            h.via_ref().unwrap().nth(3).unwrap().branch(),
            Some("z9hG4bK4")
        );
    }

    #[test]
    fn views_hold_what_the_owned_values_hold() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Via,
            "SIP / 2.0 / UDP a.example.com : 5070 ; branch = z9hG4bK1 ;rport, \
             SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK2;received=192.0.2.1",
        );
        h.push(
            HeaderName::From,
            r#""A \"x\"" <sip:al%69ce:pw@example.com:5061;transport=tcp?Subject=hi>;tag=1"#,
        );
        h.push(HeaderName::To, "tel:+1-555-1234;p=1");
        h.push(HeaderName::Contact, "<urn:x:y>;expires=60, <sip:192.0.2.9>");
        let via = h.via().unwrap();
        let views: Vec<_> = h.via_ref().unwrap().collect();
        assert_eq!(views.len(), 2);
        assert_eq!(
            (views[0].protocol, views[0].version, views[0].transport),
            ("SIP", "2.0", "UDP")
        );
        assert_eq!(views[0].host, HostOf::Domain("a.example.com"));
        assert_eq!((views[0].port, views[0].rport()), (Some(5070), Some(None)));
        assert_eq!(views[1].host.to_string(), via[1].host.to_string());
        assert_eq!(views[1].received(), via[1].received());
        for (v, o) in views.iter().zip(&via) {
            assert_eq!(v.branch(), o.branch());
            let names: Vec<_> = v.params.iter().map(|p| (p.name, p.value)).collect();
            let owned: Vec<_> = o
                .params
                .iter()
                .map(|p| (&*p.name, p.value.as_deref()))
                .collect();
            assert_eq!(names, owned);
        }
        let from = h.from_ref().unwrap();
        assert_eq!(from.display_name().as_deref(), Some(r#"A "x""#));
        assert_eq!(from.tag(), Some("1"));
        let UriOf::Sip(u) = from.uri else {
            panic!("not a SIP URI")
        };
        assert_eq!(
            (u.user, u.password, u.port),
            (Some("al%69ce"), Some("pw"), Some(5061))
        );
        assert_eq!(u.params.value("TRANSPORT").as_deref(), Some("tcp"));
        assert_eq!(u.headers, Some("Subject=hi"));
        assert_eq!(
            h.from().unwrap().to_string(),
            r#""A \"x\"" <sip:al%69ce:pw@example.com:5061;transport=tcp?Subject=hi>;tag=1"#
        );
        let to = h.to_ref().unwrap();
        assert!(
            matches!(to.uri, UriOf::Tel(t) if t.number == "+1-555-1234" && t.params.is_empty())
        );
        assert_eq!(to.params.get("p").and_then(|p| p.value), Some("1"));
        let contacts: Vec<_> = h.contacts_ref().unwrap().collect();
        assert!(matches!(contacts[0].uri, UriOf::Other(o) if (o.scheme, o.rest) == ("urn", "x:y")));
        assert_eq!(
            contacts[1].uri.as_sip().map(|u| u.host),
            Some(HostOf::Ipv4([192, 0, 2, 9].into()))
        );
        assert_eq!(h.contacts().unwrap().len(), 2);
    }

    #[test]
    fn contact_expires_is_checked_on_its_first_occurrence() {
        let contacts = |v: &str| {
            let mut h = Headers::new();
            h.push(HeaderName::Contact, v);
            h.contacts().map(|c| c.len()).map_err(|e| e.to_string())
        };
        assert_eq!(contacts("<sip:a@b>;expires=60;EXPIRES=x"), Ok(1));
        assert_eq!(contacts("sip:a@b;Expires=4294967295"), Ok(1));
        assert!(contacts("<sip:a@b>;expires").is_err());
        assert!(contacts("<sip:a@b>;x=1;expires=4294967296").is_err());
        assert!(contacts("<sip:a@b>, <sip:c@d>;expires=-1").is_err());
    }

    #[test]
    fn cached_values_past_the_inline_room_keep_their_order() {
        let mut h = Headers::new();
        for k in 0..7 {
            h.push(
                HeaderName::Via,
                format!("SIP/2.0/UDP h{k};branch=z9hG4bK{k}"),
            );
            h.push(HeaderName::Contact, format!("<sip:c{k}@example.com>"));
        }
        let branches: Vec<_> = h.via_ref().unwrap().map(|v| v.branch().unwrap()).collect();
        let expected: Vec<_> = (0..7).map(|k| format!("z9hG4bK{k}")).collect();
        assert_eq!(branches, expected);
        let owned: Vec<_> = h
            .via()
            .unwrap()
            .iter()
            .map(|v| v.branch().unwrap().to_owned())
            .collect();
        assert_eq!(owned, expected);
        let users: Vec<_> = h
            .contacts_ref()
            .unwrap()
            .map(|c| c.uri.as_sip().and_then(|u| u.user).unwrap())
            .collect();
        assert_eq!(users, ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]);
        assert_eq!(h.contacts().unwrap()[6].to_string(), "<sip:c6@example.com>");
    }

    #[test]
    fn list_views_parse_as_read_and_end_at_an_error() {
        let mut h = Headers::new();
        h.push(
            HeaderName::Route,
            "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
        );
        h.push(HeaderName::Route, "<sip:p3.example.com;lr> junk");
        let items: Vec<_> = h.route_ref().collect();
        assert_eq!(items.len(), 3);
        assert!(items[..2].iter().all(Result::is_ok));
        assert!(matches!(items[2], Err(Error::Header { .. })));
        assert!(h.route().is_err());
        h.push(HeaderName::Allow, "INVITE, ACK");
        h.push(HeaderName::Allow, "  ");
        h.push(HeaderName::Allow, "X-NEW");
        let allow: Vec<_> = h.allow_ref().collect::<Result<_>>().unwrap();
        assert_eq!(allow, ["INVITE", "ACK", "X-NEW"]);
        assert_eq!(h.allow().unwrap(), allow);
        h.push(
            HeaderName::ProxyAuthorization,
            r#"Digest username="a\"b", realm=pbx, nc=00000001, Basic cred=abc"#,
        );
        let auth: Vec<_> = h.proxy_authorization_ref().collect::<Result<_>>().unwrap();
        assert_eq!(auth.len(), 2);
        assert!(auth[0].scheme_is("digest"));
        assert_eq!(auth[0].param("USERNAME").as_deref(), Some(r#"a"b"#));
        assert_eq!(auth[0].params().count(), 3);
        assert_eq!(
            (auth[1].scheme, auth[1].param("cred").as_deref()),
            ("Basic", Some("abc"))
        );
        let owned = h.proxy_authorization().unwrap();
        assert_eq!(
            owned[0].to_string(),
            r#"Digest username="a\"b", realm=pbx, nc=00000001"#
        );
        assert_eq!(owned[1].params.len(), 1);
    }

    proptest::proptest! {
        /// The one-scan Call-ID check answers as the plain definition: split at the first
        /// `@`, each side a non-empty run of word octets.
        #[test]
        fn call_id_check_matches_the_definition(
            v in proptest::collection::vec(
                proptest::sample::select(vec!['a', '@', ' ', '(', '"', '.', 'é', ';']),
                0..8,
            )
        ) {
            let v: String = v.into_iter().collect();
            let word = |w: &str| {
                !w.is_empty() && w.bytes().all(|c| CALL_ID_WORD[usize::from(c)])
            };
            let plain = match v.split_once('@') {
                Some((a, b)) => word(a) && word(b),
                None => word(&v),
            };
            proptest::prop_assert_eq!(is_call_id(&v), plain, "{:?}", v);
        }
    }

    #[test]
    fn a_list_changed_again_and_again_keeps_its_size() {
        let mut h = Headers::new();
        h.push(HeaderName::new("X-Keep"), "k");
        for k in 0..1000 {
            h.set(HeaderName::Subject, format!("s{k}"));
            h.push(HeaderName::new("X-Tmp"), "t");
            h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1");
            h.remove(&HeaderName::new("x-tmp"));
            h.remove(&HeaderName::Via);
        }
        assert_eq!(h.len(), 2);
        assert!(h.owned.len() + h.others.len() <= 2 * h.len() + 8 + 3);
        let lines: Vec<_> = h.iter().map(|l| (l.name.as_str(), l.value)).collect();
        assert_eq!(lines, [("X-Keep", "k"), ("Subject", "s999")]);
    }

    #[test]
    fn set_and_to_tag() {
        let mut h = Headers::new();
        h.push(HeaderName::To, "<sip:bob@example.com>");
        h.push(HeaderName::Subject, "a");
        h.push(HeaderName::Subject, "b");
        h.set(HeaderName::Subject, "c");
        assert_eq!(h.get_all(&HeaderName::Subject).count(), 1);
        h.set_to_tag("xyz").unwrap();
        assert_eq!(h.to().unwrap().tag(), Some("xyz"));
        assert_eq!(
            h.get(&HeaderName::To),
            Some("<sip:bob@example.com>;tag=xyz")
        );
        h.set_to_tag("abc").unwrap();
        assert_eq!(h.to().unwrap().tag(), Some("abc"));
    }
}
