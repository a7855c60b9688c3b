//! SAKKE (RFC 6508): identity-based key encapsulation of a shared secret value (SSV), with the
//! RFC 6509 Appendix A parameter set 1 (1024-bit p, SHA-256, 128-bit SSV).
//!
//! This module owns the KMS side (master secret z, public key Z, RSK issue), RSK validation
//! (§6.1.2), encapsulation (§6.2.1) and decapsulation with the R check (§6.2.2). The top-level
//! functions use the constant-time fast path; [`reference`] is the slow, readable big-integer
//! version the fast path is tested against.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;

mod fast;
pub mod reference;

/// Octets of an F_p element (L = Ceiling(lg(p)/8)).
pub const FP_LEN: usize = 128;
/// Octets of an uncompressed point `04 || x || y`.
pub const POINT_LEN: usize = 2 * FP_LEN + 1;
/// Octets of the SSV (n = 128 bits).
pub const SSV_LEN: usize = 16;
/// Octets of the encapsulated data `R || H`.
pub const SED_LEN: usize = POINT_LEN + SSV_LEN;

// Parameter set 1, RFC 6509 Appendix A.
pub(crate) const P_HEX: &str = "997ABB1F0A563FDA65C61198DAD0657A416C0CE19CB48261BE9AE358B3E01A2EF40AAB27E2FC0F1B228730D531A59CB0E791B39FF7C88A19356D27F4A666A6D0E26C6487326B4CD4512AC5CD65681CE1B6AFF4A831852A82A7CF3C521C3C09AA9F94D6AF56971F1FFCE3E82389857DB080C5DF10AC7ACE87666D807AFEA85FEB";
pub(crate) const Q_HEX: &str = "265EAEC7C2958FF69971846636B4195E905B0338672D20986FA6B8D62CF8068BBD02AAC9F8BF03C6C8A1CC354C69672C39E46CE7FDF222864D5B49FD2999A9B4389B1921CC9AD335144AB173595A07386DABFD2A0C614AA0A9F3CF14870F026AA7E535ABD5A5C7C7FF38FA08E2615F6C203177C42B1EB3A1D99B601EBFAA17FB";
pub(crate) const PX_HEX: &str = "53FC09EE332C29AD0A7990053ED9B52A2B1A2FD60AEC69C698B2F204B6FF7CBFB5EDB6C0F6CE2308AB10DB9030B09E1043D5F22CDB9DFA55718BD9E7406CE8909760AF765DD5BCCB337C86548B72F2E1A702C3397A60DE74A7C1514DBA66910DD5CFB4CC80728D87EE9163A5B63F73EC80EC46C4967E0979880DC8ABEAE63895";
pub(crate) const PY_HEX: &str = "0A8249063F6009F1F9F1F0533634A135D3E82016029906963D778D821E141178F5EA69F4654EC2B9E7F7F5E5F0DE55F66B598CCF9A140B2E416CFF0CA9E032B970DAE117AD547C6CCAD696B5B7652FE0AC6F1E80164AA989492D979FC5A4D5F213515AD7E9CB99A980BDAD5AD5BB4636ADB9B5706A67DCDE75573FD71BEF16D7";
pub(crate) const G_HEX: &str = "66FC2A432B6EA392148F15867D623068C6A87BD1FB94C41E27FABE658E015A87371E94744C96FEDA449AE9563F8BC446CBFDA85D5D00EF577072DA8F541721BEEE0FAED1828EAB90B99DFB0138C7843355DF0460B4A9FD74B4F1A32BCAFA1FFAD682C033A7942BCCE3720F20B9B7B0403C8CAE87B7A0042ACDE0FAB36461EA46";

/// Steps 1–5 of HashToIntegerRange (RFC 6508 §5.1): `v' = v_1 || ... || v_l` with SHA-256.
/// The final `v' mod n` is left to the caller's arithmetic.
pub(crate) fn hash_expand(s: &[u8], l: usize) -> Vec<u8> {
    // 1) A = hashfn( s )
    let a = Sha256::digest(s);
    // 2) h_0 = 00...00
    let mut h = [0u8; 32];
    let mut out = Vec::with_capacity(32 * l);
    for _ in 0..l {
        // 4a) h_i = hashfn( h_(i-1) )
        h = Sha256::digest(h).into();
        // 4b) v_i = hashfn( h_i || A )
        out.extend_from_slice(&Sha256::new().chain_update(h).chain_update(a).finalize());
    }
    out
}

fn encode_point(x: &[u8; FP_LEN], y: &[u8; FP_LEN]) -> [u8; POINT_LEN] {
    let mut out = [0u8; POINT_LEN];
    out[0] = 0x04;
    out[1..=FP_LEN].copy_from_slice(x);
    out[1 + FP_LEN..].copy_from_slice(y);
    out
}

fn xor_mask(ssv: &Ssv, mask: &[u8; SSV_LEN]) -> [u8; SSV_LEN] {
    let mut out = [0u8; SSV_LEN];
    for ((o, a), b) in out.iter_mut().zip(&ssv.0).zip(mask) {
        *o = a ^ b;
    }
    out
}

fn point_array(bytes: &[u8], what: &'static str) -> Result<[u8; POINT_LEN], Error> {
    let arr: [u8; POINT_LEN] = bytes.try_into().map_err(|_| Error::Encoding(what))?;
    if arr[0] != 0x04 {
        return Err(Error::Encoding(what));
    }
    Ok(arr)
}

fn fmt_hex(f: &mut core::fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> core::fmt::Result {
    write!(f, "{name}(")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    write!(f, ")")
}

/// The KMS master secret z, an integer in `2..q` (128 big-endian octets).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterSecret([u8; FP_LEN]);

impl MasterSecret {
    /// Parses a big-endian integer of at most 128 octets; it must lie in `2..q`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > FP_LEN {
            return Err(Error::Encoding("z"));
        }
        let mut arr = [0u8; FP_LEN];
        arr[FP_LEN - bytes.len()..].copy_from_slice(bytes);
        let z = Self(arr);
        let zz = num_bigint::BigUint::from_bytes_be(&z.0);
        if zz < num_bigint::BigUint::from(2u8) || zz >= reference::params().q {
            return Err(Error::ScalarRange("z"));
        }
        Ok(z)
    }
    /// The 128-octet big-endian encoding (secret: handle with care).
    pub fn as_bytes(&self) -> &[u8; FP_LEN] {
        &self.0
    }
}

crate::secret_traits!(MasterSecret, 0);

/// The KMS public key Z = [z]P, `04 || x || y` (257 octets).
///
/// The fixed-base table for Z (2.3 MiB) is built on first use and shared by every clone, even
/// one made before it was built. Recipients encapsulated to more than once get a table of their
/// own `[b]P + Z` (the second time; at most [`RECIPIENT_TABLES`] kept), which halves the cost
/// of later encapsulations to them; it is built once per recipient, by one encapsulation, while
/// concurrent encapsulations to the same recipient go on without it (see
/// [`Self::prepare_recipient`] to build it off the call path).
#[derive(Clone)]
pub struct KmsPublicKey {
    bytes: [u8; POINT_LEN],
    point: fast::curve::Affine,
    table: Arc<OnceLock<fast::curve::FixedBaseTable>>,
    recipients: Arc<Mutex<RecipientCache>>,
    /// Encapsulations mark a recipient's table wanted instead of building it themselves.
    defer_builds: Arc<AtomicBool>,
}

/// How many per-recipient tables a [`KmsPublicKey`] keeps (2.3 MiB each).
pub const RECIPIENT_TABLES: usize = 4;

/// A recipient seen by [`encapsulate`].
struct Recipient {
    id: Vec<u8>,
    table: RecipientTable,
}

enum RecipientTable {
    /// Seen once: no table yet.
    None,
    /// Seen again while builds are deferred: waiting for the application to build it.
    Wanted,
    /// Seen again: one caller is building the table (others go without it meanwhile).
    Building,
    /// Built.
    Built(Arc<fast::curve::FixedBaseTable>),
}

/// Recipients seen by [`encapsulate`], most recent last (at most `2 * RECIPIENT_TABLES`, at most
/// [`RECIPIENT_TABLES`] of them with a table).
type RecipientCache = Vec<Recipient>;

/// What the cache says about a recipient on one encapsulation.
enum Lookup {
    /// Use this table.
    Table(Arc<fast::curve::FixedBaseTable>),
    /// Go without a table (first sight, or another caller is building it).
    Without,
    /// This caller builds the table.
    Build,
}

impl KmsPublicKey {
    /// Parses `04 || x || y`; the point must lie on the curve.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr = point_array(bytes, "Z")?;
        let point = fast::curve::Affine::from_coordinates(&arr[1..=FP_LEN], &arr[1 + FP_LEN..])
            .ok_or(Error::InvalidPoint("Z"))?;
        Ok(Self {
            bytes: arr,
            point,
            table: Arc::default(),
            recipients: Arc::default(),
            defer_builds: Arc::default(),
        })
    }
    /// The 257-octet encoding.
    pub fn as_bytes(&self) -> &[u8; POINT_LEN] {
        &self.bytes
    }
    /// Builds every table an encapsulation uses now rather than on the first one (~50 ms
    /// each): the per-KMS table of Z, and the process-wide tables of the generator P and of
    /// `g = <P, P>`.
    pub fn prepare(&self) {
        self.table();
        fast::p_table();
        fast::gt_table();
    }
    /// Builds the table of `[b]P + Z` for recipient identifier `id` now (about 0.1 s of CPU,
    /// 2.3 MiB), unless it is built or being built, so that the encapsulations to `id` after
    /// this one find it: for an application that knows its frequent recipients, or that builds
    /// tables on a background thread. Counts as a sighting for the [`RECIPIENT_TABLES`] bound.
    /// Whether a table was built by this call.
    pub fn prepare_recipient(&self, id: &[u8]) -> bool {
        match self.lookup(id, true) {
            Lookup::Build => self.build_recipient(id).is_some(),
            Lookup::Table(_) | Lookup::Without => false,
        }
    }

    /// From now on (for this key and every clone of it), an encapsulation that sees a recipient
    /// the second time no longer builds its `[b]P + Z` table itself (~0.1 s on the call's
    /// path): it goes on without the table and marks it wanted, and the application takes it
    /// with [`Self::take_wanted_recipient`] and builds it where it likes — e.g. a gateway on a
    /// background thread, so a burst of calls to a new callee never waits for a table. Which
    /// recipients get a table is unchanged (seen twice among the recent ones).
    pub fn defer_recipient_tables(&self) {
        self.defer_builds.store(true, Ordering::Relaxed);
    }

    /// A recipient whose table an encapsulation wanted (see
    /// [`Self::defer_recipient_tables`]), most recent first, for the caller to build with
    /// [`Self::prepare_recipient`]; `None` when nothing is wanted.
    pub fn take_wanted_recipient(&self) -> Option<Vec<u8>> {
        let mut cache = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache
            .iter_mut()
            .rev()
            .find(|r| matches!(r.table, RecipientTable::Wanted))?;
        entry.table = RecipientTable::None;
        Some(entry.id.clone())
    }

    /// Whether the table of recipient `id` is built.
    pub fn has_recipient_table(&self, id: &[u8]) -> bool {
        let cache = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .iter()
            .any(|r| r.id == id && matches!(r.table, RecipientTable::Built(_)))
    }

    /// The table of `[b]P + Z` for a recipient seen before, building it the second time it
    /// is seen — by this caller only; callers meanwhile go without it.
    fn recipient_table(&self, id: &[u8]) -> Option<Arc<fast::curve::FixedBaseTable>> {
        match self.lookup(id, false) {
            Lookup::Table(t) => Some(t),
            Lookup::Without => None,
            Lookup::Build => self.build_recipient(id),
        }
    }

    /// Marks a sighting of `id` (most recent last) and says what to do; `build_now` claims the
    /// build at the first sighting too.
    fn lookup(&self, id: &[u8], build_now: bool) -> Lookup {
        let mut cache = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        let entry = match cache.iter().position(|r| r.id == id) {
            Some(i) => {
                let entry = cache.remove(i);
                cache.push(entry);
                cache.last_mut()
            }
            None => {
                // keep at most RECIPIENT_TABLES tables and as many bare identifiers
                if cache.len() == 2 * RECIPIENT_TABLES {
                    cache.remove(0);
                }
                cache.push(Recipient {
                    id: id.to_vec(),
                    table: RecipientTable::None,
                });
                if !build_now {
                    return Lookup::Without;
                }
                cache.last_mut()
            }
        };
        let Some(entry) = entry else {
            return Lookup::Without;
        };
        match &entry.table {
            RecipientTable::Built(t) => Lookup::Table(t.clone()),
            RecipientTable::Building => Lookup::Without,
            RecipientTable::None | RecipientTable::Wanted
                if !build_now && self.defer_builds.load(Ordering::Relaxed) =>
            {
                entry.table = RecipientTable::Wanted;
                Lookup::Without
            }
            RecipientTable::None | RecipientTable::Wanted => {
                entry.table = RecipientTable::Building;
                Lookup::Build
            }
        }
    }

    /// Builds the table the caller claimed in [`Self::lookup`] and stores it (dropping the
    /// oldest table beyond [`RECIPIENT_TABLES`]).
    fn build_recipient(&self, id: &[u8]) -> Option<Arc<fast::curve::FixedBaseTable>> {
        let table =
            fast::id_point(&self.point, id).map(|a| Arc::new(fast::curve::FixedBaseTable::new(&a)));
        let mut cache = self.recipients.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = cache.iter().position(|r| r.id == id) else {
            // Pushed out of the cache while building: used once, not kept.
            return table;
        };
        let Some(table) = table else {
            cache[i].table = RecipientTable::None;
            return None;
        };
        let built = cache
            .iter()
            .filter(|r| matches!(r.table, RecipientTable::Built(_)))
            .count();
        if built >= RECIPIENT_TABLES {
            if let Some(oldest) = cache
                .iter_mut()
                .find(|r| matches!(r.table, RecipientTable::Built(_)))
            {
                oldest.table = RecipientTable::None;
            }
        }
        if let Some(entry) = cache.iter_mut().find(|r| r.id == id) {
            entry.table = RecipientTable::Built(table.clone());
        }
        Some(table)
    }

    fn table(&self) -> &fast::curve::FixedBaseTable {
        self.table
            .get_or_init(|| fast::curve::FixedBaseTable::new(&self.point))
    }
}

impl PartialEq for KmsPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for KmsPublicKey {}

impl core::fmt::Debug for KmsPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        fmt_hex(f, "KmsPublicKey", &self.bytes)
    }
}

/// A Receiver Secret Key K_b = [(b + z)^-1]P, `04 || x || y` (257 octets).
///
/// Its Miller-loop lines (about 390 KiB) and its identifier's table are computed on first use
/// and shared by every clone, even one made before they were computed.
#[derive(Clone)]
pub struct Rsk {
    bytes: [u8; POINT_LEN],
    point: fast::curve::Affine,
    prepared: Arc<OnceLock<fast::PreparedRsk>>,
    own: Arc<OnceLock<Option<OwnIdTable>>>,
}

/// The fixed-base table of `[b]P + Z` for the identifier and KMS key an RSK belongs to, built by
/// the first validation or decapsulation (the R check then costs half as much).
struct OwnIdTable {
    id: Vec<u8>,
    zpub: [u8; POINT_LEN],
    table: fast::curve::FixedBaseTable,
}

impl Rsk {
    /// Parses `04 || x || y`; the point must lie on the curve. Use [`validate_rsk`] to check it
    /// belongs to an identifier.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr = point_array(bytes, "RSK")?;
        let point = fast::curve::Affine::from_coordinates(&arr[1..=FP_LEN], &arr[1 + FP_LEN..])
            .ok_or(Error::InvalidPoint("RSK"))?;
        Ok(Self {
            bytes: arr,
            point,
            prepared: Arc::default(),
            own: Arc::default(),
        })
    }
    /// The 257-octet encoding (secret: handle with care).
    pub fn as_bytes(&self) -> &[u8; POINT_LEN] {
        &self.bytes
    }
    /// Computes the per-RSK pairing precomputation now rather than on first use.
    pub fn prepare(&self) {
        self.prepared();
    }
    /// [`Self::prepare`], and builds the table of `[b]P + Z` for the identifier `id` this RSK
    /// belongs to under `zpub` (used by the decapsulation's R check) now rather than on the
    /// first decapsulation.
    pub fn prepare_for(&self, zpub: &KmsPublicKey, id: &[u8]) {
        self.prepare();
        let _ = self.own_table(zpub, id);
    }
    /// The per-identifier table when it is built for this `(zpub, id)`, building it on first use.
    fn own_table(&self, zpub: &KmsPublicKey, id: &[u8]) -> Option<&fast::curve::FixedBaseTable> {
        // Built once: concurrent first uses wait for the one build.
        self.own
            .get_or_init(|| {
                fast::id_point(&zpub.point, id).map(|a| OwnIdTable {
                    id: id.to_vec(),
                    zpub: zpub.bytes,
                    table: fast::curve::FixedBaseTable::new(&a),
                })
            })
            .as_ref()
            .filter(|o| o.id == id && o.zpub == zpub.bytes)
            .map(|o| &o.table)
    }
    fn id_point<'a>(&'a self, zpub: &'a KmsPublicKey, id: &[u8]) -> fast::IdPoint<'a> {
        match self.own_table(zpub, id) {
            Some(t) => fast::IdPoint::Table(t),
            None => fast::IdPoint::split(zpub.table(), id),
        }
    }
    fn prepared(&self) -> &fast::PreparedRsk {
        self.prepared
            .get_or_init(|| fast::PreparedRsk::new(&self.point))
    }
}

impl Drop for Rsk {
    fn drop(&mut self) {
        self.bytes.zeroize();
        self.point.x.zeroize();
        self.point.y.zeroize();
    }
}

crate::secret_traits!(Rsk, bytes);

/// The shared secret value (n = 128 bits).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Ssv([u8; SSV_LEN]);

impl Ssv {
    /// Wraps 16 octets.
    pub fn from_bytes(bytes: [u8; SSV_LEN]) -> Self {
        Self(bytes)
    }
    /// A fresh SSV from a CSPRNG (§6.2.1 step 1).
    pub fn random(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = [0u8; SSV_LEN];
        rng.fill_bytes(&mut b);
        Self(b)
    }
    /// The 16 octets (secret: handle with care).
    pub fn as_bytes(&self) -> &[u8; SSV_LEN] {
        &self.0
    }
}

crate::secret_traits!(Ssv, 0);

/// SAKKE encapsulated data `R || H`: `04 || Rx || Ry` (257 octets) then H (16 octets).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncapsulatedData([u8; SED_LEN]);

impl EncapsulatedData {
    /// Takes exactly 273 octets starting with 0x04; the point is checked by [`decapsulate`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let arr: [u8; SED_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Encoding("SAKKE encapsulated data length"))?;
        if arr[0] != 0x04 {
            return Err(Error::Encoding("SAKKE encapsulated data point"));
        }
        Ok(Self(arr))
    }
    /// The 273 octets.
    pub fn as_bytes(&self) -> &[u8; SED_LEN] {
        &self.0
    }
    fn from_parts(r: &[u8; POINT_LEN], h: &[u8; SSV_LEN]) -> Self {
        let mut out = [0u8; SED_LEN];
        out[..POINT_LEN].copy_from_slice(r);
        out[POINT_LEN..].copy_from_slice(h);
        Self(out)
    }
    fn parts(&self) -> (&[u8; POINT_LEN], &[u8; SSV_LEN]) {
        let (r, h) = self.0.split_at(POINT_LEN);
        (
            r.try_into().unwrap_or(&[0u8; POINT_LEN]),
            h.try_into().unwrap_or(&[0u8; SSV_LEN]),
        )
    }
}

impl core::fmt::Debug for EncapsulatedData {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        fmt_hex(f, "EncapsulatedData", &self.0)
    }
}

/// Generates a KMS master secret z (uniform in `2..q`) and its public key Z = [z]P.
pub fn generate_master(rng: &mut impl CryptoRngCore) -> (MasterSecret, KmsPublicKey) {
    loop {
        let mut b = [0u8; FP_LEN];
        rng.fill_bytes(&mut b);
        // q < 2^1022: keep 1022 bits and retry until below q
        b[0] &= 0x3f;
        let z = MasterSecret::from_bytes(&b);
        b.zeroize();
        if let Ok(z) = z {
            if let Ok(zpub) = kms_public_key(&z) {
                return (z, zpub);
            }
        }
    }
}

/// The KMS public key Z = [z]P of a master secret.
pub fn kms_public_key(z: &MasterSecret) -> Result<KmsPublicKey, Error> {
    let mut zl = fast::fp::limbs_from_be(&z.0);
    let point = fast::mul_generator(&zl).ok_or(Error::ScalarRange("z"))?;
    zl.zeroize();
    KmsPublicKey::from_bytes(&encode_point(
        &point.x.to_be_bytes(),
        &point.y.to_be_bytes(),
    ))
}

/// Issues the RSK of identifier `id` (§6.1.1): `[(b + z)^-1]P`. Fails only for the single
/// identifier with `b = -z (mod q)`.
pub fn issue_rsk(z: &MasterSecret, id: &[u8]) -> Result<Rsk, Error> {
    let k = fast::issue_rsk(&z.0, id).ok_or(Error::ScalarRange("b + z"))?;
    Rsk::from_bytes(&encode_point(&k.x.to_be_bytes(), &k.y.to_be_bytes()))
}

/// Validates an RSK for `id` (§6.1.2): `<[b]P + Z, RSK> == g`, one pairing.
pub fn validate_rsk(zpub: &KmsPublicKey, id: &[u8], rsk: &Rsk) -> Result<(), Error> {
    let a = fast::id_point(&zpub.point, id).ok_or(Error::InvalidRsk)?;
    if fast::validate_rsk(&a, rsk.prepared()) {
        Ok(())
    } else {
        Err(Error::InvalidRsk)
    }
}

/// Encapsulates `ssv` to identifier `id` under KMS public key `zpub` (§6.2.1). `r` is derived
/// from `SSV || b` as the RFC specifies, so the SSV must be fresh and random.
///
/// Fails only for the one identifier with `b = -z (mod q)` or an SSV that hashes to `r = 0`.
pub fn encapsulate(zpub: &KmsPublicKey, id: &[u8], ssv: &Ssv) -> Result<EncapsulatedData, Error> {
    let own = zpub.recipient_table(id);
    let id_point = match &own {
        Some(t) => fast::IdPoint::Table(t),
        None => fast::IdPoint::split(zpub.table(), id),
    };
    fast::encapsulate(&id_point, id, &ssv.0)
        .map(EncapsulatedData)
        .ok_or(Error::ScalarRange("r(b + z)"))
}

/// Decapsulates (§6.2.2): recovers the SSV and checks `[r]([b]P + Z) == R`.
pub fn decapsulate(
    zpub: &KmsPublicKey,
    id: &[u8],
    rsk: &Rsk,
    sed: &EncapsulatedData,
) -> Result<Ssv, Error> {
    // 1) parse ( R_(b,S), H )
    let (r_bytes, h) = sed.parts();
    let big_r = fast::curve::Affine::from_coordinates(&r_bytes[1..=FP_LEN], &r_bytes[1 + FP_LEN..])
        .ok_or(Error::Decapsulation)?;
    fast::decapsulate(&rsk.id_point(zpub, id), rsk.prepared(), id, &big_r, h)
        .map(Ssv)
        .ok_or(Error::Decapsulation)
}

#[cfg(test)]
mod tests;
