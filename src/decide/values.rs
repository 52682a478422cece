//! The value index: entries (rules, or group lines) filed by bucket under
//! one key drawn from their matchers, so that a decision looks up the
//! identity's own values instead of checking entries one by one.
//!
//! A bucket is one place in the path trie (or the single place of the
//! group lines).  Each entry is filed once, under the key of its matchers
//! that the fewest entries of its bucket share: an exact value, a prefix, a
//! `*.` DNS suffix, an IP network, a group, or, when it has nothing else,
//! `any`.  Looking
//! up gives every entry whose key the identity satisfies, plus a few more
//! on a hash collision: the caller checks each in full, so the index only
//! ever has to be complete, never exact.
//!
//! Each key has two chains, one of deny and one of allow entries, each in
//! ascending order: a caller that only wants the first match of a kind
//! stops a chain at its first match, so that even thousands of identical
//! rules cost one check.

use rustc_hash::FxHashMap as HashMap;

use std::net::IpAddr;

use super::{IpNet, Matcher, ValueMatch};
use crate::attr::Attr;
use crate::identity::Identity;

/// No entry, no bucket, no node.
pub(super) const NONE: u32 = u32::MAX;

/// An entry with more keys than this has their sharing counted in a map,
/// not by comparing each with the others.
const FEW_KEYS: usize = 8;

/// What one bucket holds, so that a look-up probes only the kinds of keys
/// and the attributes that are there.
#[derive(Debug, Clone)]
struct Bucket {
    /// The chains of entries that match every identity.
    any: Chains,
    /// The attributes with exact keys: an index into `KeyIndex::exact_attrs`, or NONE.
    exact: u32,
    /// The prefix lengths: an index into `KeyIndex::prefix_lengths`, or NONE.
    prefixes: u32,
    dns_label: bool,
    /// The network lengths of `san.ip` ranges: an index into
    /// `KeyIndex::ip_lengths`, or NONE.
    ip_nets: u32,
    /// The groups that entries here are filed under: an index into
    /// `KeyIndex::group_lists`, or NONE.
    groups: u32,
}

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket { any: [NONE; 2], exact: NONE, prefixes: NONE, dns_label: false, ip_nets: NONE, groups: NONE }
    }
}

/// The first allow entry and the first deny entry of a key (or NONE).
type Chains = [u32; 2];

/// One key, as an entry is filed under it.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Exact(Attr, &'a str),
    Prefix(Attr, &'a str),
    DnsLabel(&'a str),
    IpNet(&'a IpNet),
    Group(u32),
}

impl Key<'_> {
    fn of(matcher: &Matcher) -> Option<Key<'_>> {
        match matcher {
            Matcher::Any => None,
            Matcher::Group(g) => Some(Key::Group(*g)),
            Matcher::Attr(attr, ValueMatch::Exact(v)) => Some(Key::Exact(*attr, v)),
            Matcher::Attr(attr, ValueMatch::Prefix(p)) => Some(Key::Prefix(*attr, p)),
            Matcher::Attr(_, ValueMatch::DnsLabel(suffix)) => Some(Key::DnsLabel(suffix)),
            Matcher::Attr(_, ValueMatch::IpNet(net)) => Some(Key::IpNet(net)),
        }
    }

    /// Which key to prefer when two are shared by as many entries: an
    /// exact value costs one probe per identity value, a prefix one per
    /// prefix length, a group one per group of the identity.
    fn cost_rank(self) -> u8 {
        match self {
            Key::Exact(..) => 0,
            Key::DnsLabel(_) | Key::IpNet(_) => 1,
            Key::Prefix(..) => 2,
            Key::Group(_) => 3,
        }
    }

    fn hash(self, bucket: u32) -> u64 {
        match self {
            Key::Exact(attr, value) => hash_bytes(seed(bucket, kind_seed(TAG_EXACT, attr)), value.as_bytes()),
            Key::Prefix(attr, prefix) => {
                hash_bytes(seed(bucket, kind_seed(TAG_PREFIX, attr)), prefix.as_bytes())
            }
            Key::DnsLabel(suffix) => {
                hash_bytes(seed(bucket, kind_seed(TAG_DNS_LABEL, Attr::SanDns)), suffix.as_bytes())
            }
            Key::IpNet(net) => ip_net_hash(bucket, net),
            Key::Group(g) => group_hash(bucket, g),
        }
    }
}

// Keys are 64-bit hashes of (bucket, kind, attribute, value): the tables
// then hold no strings of their own, and a look-up with a borrowed value
// needs no owned key.  Two keys that collide share a chain, which only adds
// candidates that the full check refuses.
const TAG_EXACT: u64 = 1;
const TAG_PREFIX: u64 = 2;
const TAG_DNS_LABEL: u64 = 3;
const TAG_GROUP: u64 = 4;
const TAG_IP_NET: u64 = 5;
pub(super) const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The murmur3 finalizer: every input bit reaches every output bit.
pub(super) fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The part of a key's seed that a kind of key and its attribute give:
/// the same in every bucket, so the index works it out once, when built.
fn kind_seed(tag: u64, attr: Attr) -> u64 {
    let seed = fmix((tag << 32) | ((attr.index() as u64) << 40));
    // The attributes named by OID share their kind's index: the OID tells
    // them apart.
    match attr.oid() {
        Some(oid) => hash_bytes(seed, oid.as_bytes()),
        None => seed,
    }
}

fn seed(bucket: u32, kind_seed: u64) -> u64 {
    kind_seed ^ u64::from(bucket).wrapping_mul(MULTIPLIER)
}

fn absorb(h: u64, word: u64) -> u64 {
    (h ^ word).wrapping_mul(MULTIPLIER).rotate_left(29)
}

/// Up to eight bytes as one word.  A short tail is read as two loads that
/// may overlap (wyhash's trick) instead of byte by byte: with its length,
/// which `finish` mixes in, the word still tells every tail apart.
pub(super) fn word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    if let Ok(full) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(full);
    }
    if n >= 4 {
        let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let hi = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
        return u64::from(lo) | (u64::from(hi) << 32);
    }
    match n {
        0 => 0,
        _ => u64::from(bytes[0]) | (u64::from(bytes[n / 2]) << 8) | (u64::from(bytes[n - 1]) << 16),
    }
}

fn finish(h: u64, len: usize) -> u64 {
    fmix(h ^ len as u64)
}

/// `a == b`, without a call to memcmp for the short strings that
/// segments, methods and most values are: two loads from each end.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    if n >= 8 {
        let at = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0; 8]));
        return at(a, 0) == at(b, 0) && at(a, n - 8) == at(b, n - 8);
    }
    word(a) == word(b)
}

pub(super) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut h = seed;
    for chunk in &mut chunks {
        h = absorb(h, word(chunk));
    }
    if !chunks.remainder().is_empty() {
        h = absorb(h, word(chunks.remainder()));
    }
    finish(h, bytes.len())
}

/// The hashes `hash_bytes(seed, &value[..len])` for each of the ascending
/// `lengths` that fit, computed in one pass over `value`.
fn each_prefix_hash(seed: u64, value: &[u8], lengths: &[u32], mut f: impl FnMut(u64)) {
    let mut h = seed;
    let mut words = 0;
    for &len in lengths {
        let len = len as usize;
        if len > value.len() {
            break;
        }
        while (words + 1) * 8 <= len {
            h = absorb(h, word(&value[words * 8..words * 8 + 8]));
            words += 1;
        }
        let tail = &value[words * 8..len];
        let last = if tail.is_empty() { h } else { absorb(h, word(tail)) };
        f(finish(last, len));
    }
}

/// A network length of one family, as buckets list them: IPv4 ones first.
fn ip_length_code(net: &IpNet) -> u32 {
    (u32::from(!net.v4) << 8) | u32::from(net.len)
}

fn ip_net_hash(bucket: u32, net: &IpNet) -> u64 {
    let seed = absorb(seed(bucket, kind_seed(TAG_IP_NET, Attr::SanIp)), u64::from(ip_length_code(net)));
    hash_bytes(seed, &net.net)
}

fn group_hash(bucket: u32, group: u32) -> u64 {
    finish(absorb(seed(bucket, kind_seed(TAG_GROUP, Attr::Subject)), u64::from(group)), 4)
}

/// The index of one kind of entry (rules or group lines).
/// Each attribute with prefix keys, and its distinct prefix lengths.
/// Each with its kind_seed.
type PrefixLengths = Box<[(Attr, u64, Box<[u32]>)]>;

pub(super) struct KeyIndex {
    buckets: Vec<Bucket>,
    /// Key hash → the first entries of its chains.
    heads: Heads,
    /// Entry → the next entry of the same chain, or NONE.
    next: Vec<u32>,
    /// Lists of the attributes that have exact keys in a bucket, each with
    /// its kind_seed, shared by the buckets with the same list.
    exact_attrs: Vec<Box<[(Attr, u64)]>>,
    /// The kind_seed of DNS label keys.
    dns_seed: u64,
    /// For each attribute with prefix keys in a bucket, the distinct
    /// prefix lengths in bytes, ascending; shared as `exact_attrs` is.
    prefix_lengths: Vec<PrefixLengths>,
    /// The distinct `san.ip` network lengths of a bucket, as
    /// `ip_length_code`s, ascending; shared likewise.
    ip_lengths: Vec<Box<[u32]>>,
    /// The groups of a bucket's group keys, ascending; shared likewise.
    group_lists: Vec<Box<[u32]>>,
}

impl KeyIndex {
    /// Files entry `i` of `entries`, (bucket, deny, matchers), under its
    /// most selective key.  Entry ids are their positions.
    pub(super) fn build(bucket_count: usize, entries: &[(u32, bool, &[Matcher])]) -> KeyIndex {
        // Every entry's keys with their hashes, computed once: entry i has
        // keys[starts[i]..starts[i + 1]].
        let mut keys: Vec<(Key, u64)> = Vec::with_capacity(entries.len() * 2);
        let mut starts = Vec::with_capacity(entries.len() + 1);
        for (bucket, _, matchers) in entries {
            starts.push(keys.len());
            keys.extend(matchers.iter().filter_map(Key::of).map(|key| (key, key.hash(*bucket))));
        }
        starts.push(keys.len());
        // How many entries of a bucket could be filed under each key.  A key's
        // hash includes its bucket, so the keys of the only entry of a bucket
        // are shared by none of another: those are counted among the entry's
        // own keys, and only the others in a map (most large policies give
        // most rules a path of their own).
        let mut per_bucket = vec![0u32; bucket_count];
        for (bucket, _, _) in entries {
            let n = &mut per_bucket[*bucket as usize];
            *n = n.saturating_add(1);
        }
        let counted =
            |id: usize| per_bucket[entries[id].0 as usize] > 1 || starts[id + 1] - starts[id] > FEW_KEYS;
        let mapped = |id: usize| starts[id + 1] - starts[id] > 1 && counted(id);
        let mut shared: HashMap<u64, u32> = HashMap::default();
        shared.reserve(
            (0..entries.len()).filter(|&id| counted(id)).map(|id| starts[id + 1] - starts[id]).sum(),
        );
        for id in 0..entries.len() {
            if counted(id) {
                for (_, hash) in &keys[starts[id]..starts[id + 1]] {
                    *shared.entry(*hash).or_default() += 1;
                }
            }
        }

        let mut buckets = vec![Bucket::default(); bucket_count];
        let mut heads =
            Heads::with_room((0..entries.len()).filter(|&id| starts[id + 1] > starts[id]).count());
        let mut next = vec![NONE; entries.len()];
        let mut exact: Vec<(u32, Attr)> = Vec::new();
        let mut ip_nets: Vec<(u32, u32)> = Vec::new();
        let mut prefixes: HashMap<(u32, Attr), Vec<u32>> = HashMap::default();
        let mut groups: Vec<(u32, u32)> = Vec::new();
        // Entries are filed last to first, each at the front of its chain,
        // so that every chain runs in ascending order.
        for (id, (bucket, deny, _)) in entries.iter().enumerate().rev() {
            let kind = usize::from(*deny);
            let candidates = &keys[starts[id]..starts[id + 1]];
            let best = match candidates {
                [only] => Some(only),
                _ if mapped(id) => {
                    candidates.iter().min_by_key(|(key, hash)| (shared[hash], key.cost_rank()))
                }
                _ => candidates.iter().min_by_key(|(key, hash)| {
                    (candidates.iter().filter(|(_, h)| h == hash).count(), key.cost_rank())
                }),
            };
            let b = &mut buckets[*bucket as usize];
            let Some((key, hash)) = best else {
                next[id] = b.any[kind];
                b.any[kind] = id as u32;
                continue;
            };
            match key {
                Key::Exact(attr, _) => exact.push((*bucket, *attr)),
                Key::IpNet(net) => ip_nets.push((*bucket, ip_length_code(net))),
                Key::Prefix(attr, prefix) => {
                    prefixes.entry((*bucket, *attr)).or_default().push(prefix.len() as u32)
                }
                Key::DnsLabel(_) => b.dns_label = true,
                Key::Group(g) => groups.push((*bucket, *g)),
            }
            let head = &mut heads.chains_mut(*hash)[kind];
            next[id] = *head;
            *head = id as u32;
        }
        drop((keys, shared, per_bucket));
        heads.fit();

        exact.sort_unstable();
        exact.dedup();
        let mut exact_attrs = Interned::default();
        let mut list = Vec::new();
        for run in exact.chunk_by(|a, b| a.0 == b.0) {
            list.clear();
            list.extend(run.iter().map(|(_, a)| (*a, kind_seed(TAG_EXACT, *a))));
            buckets[run[0].0 as usize].exact = exact_attrs.id(&list);
        }
        drop(exact);
        ip_nets.sort_unstable();
        ip_nets.dedup();
        let mut ip_lengths = Interned::default();
        let mut list = Vec::new();
        for run in ip_nets.chunk_by(|a, b| a.0 == b.0) {
            list.clear();
            list.extend(run.iter().map(|(_, l)| *l));
            buckets[run[0].0 as usize].ip_nets = ip_lengths.id(&list);
        }
        let mut prefixes: Vec<((u32, Attr), Vec<u32>)> = prefixes.into_iter().collect();
        prefixes.sort_unstable_by_key(|((bucket, attr), _)| (*bucket, *attr));
        let mut prefix_lengths = Interned::default();
        for run in prefixes.chunk_by(|a, b| a.0 .0 == b.0 .0) {
            let list: Vec<_> = run
                .iter()
                .map(|((_, attr), lengths)| {
                    let mut lengths = lengths.clone();
                    lengths.sort_unstable();
                    lengths.dedup();
                    (*attr, kind_seed(TAG_PREFIX, *attr), lengths.into_boxed_slice())
                })
                .collect();
            buckets[run[0].0 .0 as usize].prefixes = prefix_lengths.id(&list);
        }
        groups.sort_unstable();
        groups.dedup();
        let mut group_lists = Interned::default();
        let mut list = Vec::new();
        for run in groups.chunk_by(|a, b| a.0 == b.0) {
            list.clear();
            list.extend(run.iter().map(|(_, g)| *g));
            buckets[run[0].0 as usize].groups = group_lists.id(&list);
        }
        KeyIndex {
            buckets,
            heads,
            next,
            exact_attrs: exact_attrs.into_lists(),
            dns_seed: kind_seed(TAG_DNS_LABEL, Attr::SanDns),
            prefix_lengths: prefix_lengths.into_lists(),
            ip_lengths: ip_lengths.into_lists(),
            group_lists: group_lists.into_lists(),
        }
    }

    /// Visits the deny chain, then the allow chain, each until `visit`
    /// says that nothing further in it can matter.
    #[inline(always)]
    fn chains(&self, chains: Chains, visit: &mut impl FnMut(u32) -> bool) {
        for head in [chains[1], chains[0]] {
            let mut id = head;
            while id != NONE && visit(id) {
                id = self.next[id as usize];
            }
        }
    }

    #[inline(always)]
    fn keyed(&self, hash: u64, visit: &mut impl FnMut(u32) -> bool) {
        if let Some(chains) = self.heads.get(hash) {
            self.chains(chains, visit);
        }
    }

    /// The groups that entries of `bucket` are filed under, ascending.
    pub(super) fn groups(&self, bucket: u32) -> &[u32] {
        match self.buckets[bucket as usize].groups {
            NONE => &[],
            list => &self.group_lists[list as usize],
        }
    }

    /// Calls `visit` with every entry of `bucket` filed under `any` or
    /// under a value key that one of the identity's values satisfies, deny
    /// entries before allow entries of each key, each kind in ascending
    /// order.  When `visit` returns false, the rest of that chain is
    /// skipped.
    #[inline]
    pub(super) fn probe(&self, bucket: u32, identity: &Identity, visit: &mut impl FnMut(u32) -> bool) {
        let b = &self.buckets[bucket as usize];
        self.chains(b.any, visit);
        if b.exact != NONE {
            for (attr, kind_seed) in self.exact_attrs[b.exact as usize].iter() {
                let seed = seed(bucket, *kind_seed);
                for value in identity.match_values(*attr) {
                    self.keyed(hash_bytes(seed, value.as_bytes()), visit);
                }
            }
        }
        if b.prefixes != NONE || b.dns_label || b.ip_nets != NONE {
            self.probe_patterns(bucket, b, identity, visit);
        }
    }

    /// The keys of `probe` that take more than one look-up per value: kept
    /// out of line, as most buckets have none.
    #[inline(never)]
    fn probe_patterns(
        &self,
        bucket: u32,
        b: &Bucket,
        identity: &Identity,
        visit: &mut impl FnMut(u32) -> bool,
    ) {
        if b.prefixes != NONE {
            for (attr, kind_seed, lengths) in self.prefix_lengths[b.prefixes as usize].iter() {
                let seed = seed(bucket, *kind_seed);
                for value in identity.match_values(*attr) {
                    each_prefix_hash(seed, value.as_bytes(), lengths, |hash| self.keyed(hash, visit));
                }
            }
        }
        if b.dns_label {
            let seed = seed(bucket, self.dns_seed);
            for name in identity.match_values(Attr::SanDns) {
                if let Some((label, suffix)) = name.split_once('.') {
                    if !label.is_empty() {
                        self.keyed(hash_bytes(seed, suffix.as_bytes()), visit);
                    }
                }
            }
        }
        if b.ip_nets != NONE {
            let lengths = &self.ip_lengths[b.ip_nets as usize];
            for text in identity.match_values(Attr::SanIp) {
                // The identity wrote the address; parsing it back allocates nothing.
                let Ok(addr) = text.parse::<IpAddr>() else {
                    continue;
                };
                for code in lengths.iter() {
                    let v4 = code >> 8 == 0;
                    if v4 == addr.is_ipv4() {
                        let net = IpNet::of(addr, (code & 0xff) as u8);
                        self.keyed(ip_net_hash(bucket, &net), visit);
                    }
                }
            }
        }
    }

    /// Calls `visit` with every entry of `bucket` filed under `group`, as
    /// `probe` does.
    pub(super) fn probe_group(&self, bucket: u32, group: u32, visit: &mut impl FnMut(u32) -> bool) {
        self.keyed(group_hash(bucket, group), visit);
    }
}

/// The chains of each key hash, in an open-addressed table: the hashes are
/// mixed already, so a look-up is a mask, a compare or two and no hashing
/// of its own (a general map hashed them again, at several times the cost).
struct Heads {
    /// (key hash, chains); the chains of an empty slot are both NONE, which
    /// no filed key's are.
    slots: Box<[(u64, Chains)]>,
    mask: usize,
}

impl Heads {
    /// At most two thirds full, so that a miss ends within a few slots.
    fn size_for(keys: usize) -> usize {
        (keys + keys / 2 + 1).next_power_of_two()
    }

    /// A table with room for `keys` distinct keys.
    fn with_room(keys: usize) -> Heads {
        let size = Heads::size_for(keys);
        Heads { slots: vec![(0, [NONE; 2]); size].into_boxed_slice(), mask: size - 1 }
    }

    /// The chains of `hash`, added (both NONE) if it has none yet; the
    /// caller then sets one, which no empty slot has.  Only while building,
    /// within the room asked for.
    fn chains_mut(&mut self, hash: u64) -> &mut Chains {
        let mut i = hash as usize & self.mask;
        while self.slots[i].1 != [NONE; 2] && self.slots[i].0 != hash {
            i = (i + 1) & self.mask;
        }
        self.slots[i].0 = hash;
        &mut self.slots[i].1
    }

    /// Shrinks the table to the size its keys need, when fewer were distinct
    /// than there was room for.
    fn fit(&mut self) {
        let keys = self.slots.iter().filter(|(_, chains)| *chains != [NONE; 2]).count();
        if Heads::size_for(keys) >= self.slots.len() {
            return;
        }
        let old = std::mem::replace(self, Heads::with_room(keys));
        for (hash, chains) in old.slots.iter().filter(|(_, chains)| *chains != [NONE; 2]) {
            *self.chains_mut(*hash) = *chains;
        }
    }

    #[inline]
    fn get(&self, hash: u64) -> Option<Chains> {
        let mut i = hash as usize & self.mask;
        loop {
            let (h, chains) = self.slots[i];
            if h == hash && chains != [NONE; 2] {
                return Some(chains);
            }
            if chains == [NONE; 2] {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Lists kept once however many buckets have them (100,000 buckets that
/// each key on `subject.CN` share one list).
struct Interned<T: std::hash::Hash + Eq + Clone> {
    ids: HashMap<Box<[T]>, u32>,
    lists: Vec<Box<[T]>>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Interned<T> {
    fn default() -> Self {
        Interned { ids: HashMap::default(), lists: Vec::new() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interned<T> {
    /// The list's number; a list seen before is not copied again.
    fn id(&mut self, list: &[T]) -> u32 {
        if let Some(id) = self.ids.get(list) {
            return *id;
        }
        let next = self.lists.len() as u32;
        self.lists.push(list.into());
        self.ids.insert(list.into(), next);
        next
    }

    fn into_lists(mut self) -> Vec<Box<[T]>> {
        self.lists.shrink_to_fit();
        self.lists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_built_with_room_to_spare_shrink_to_their_keys_and_find_them() {
        let mut heads = Heads::with_room(1000);
        let hashes: Vec<u64> = (0..5u64).map(|i| fmix(i + 1)).collect();
        for (i, hash) in hashes.iter().enumerate() {
            heads.chains_mut(*hash)[i % 2] = i as u32;
        }
        heads.chains_mut(hashes[0])[1] = 7;
        heads.fit();
        assert_eq!(heads.slots.len(), Heads::size_for(5));
        assert_eq!(heads.get(hashes[0]), Some([0, 7]));
        for (i, hash) in hashes.iter().enumerate().skip(1) {
            let mut want = [NONE; 2];
            want[i % 2] = i as u32;
            assert_eq!(heads.get(*hash), Some(want));
        }
        assert_eq!(heads.get(fmix(99)), None);
    }

    #[test]
    fn prefix_hashes_are_the_hashes_of_the_prefixes() {
        let value = b"spiffe://example.org/ns/team42/sa/x";
        let lengths: Vec<u32> = (0..=value.len() as u32 + 3).collect();
        let mut got = Vec::new();
        each_prefix_hash(7, value, &lengths, |h| got.push(h));
        let want: Vec<u64> = (0..=value.len()).map(|n| hash_bytes(7, &value[..n])).collect();
        assert_eq!(got, want);
    }
}
