//! A mutator that knows DER: it reads the input as a tree of TLVs, changes
//! one node (its content, its tag, its place, its length's encoding) and
//! writes the tree back with lengths that fit.  Byte-level mutations of a
//! certificate almost always break an outer length and die in the first
//! parser; these reach the names, SANs and extensions inside, where the
//! identity code is.  Encapsulated DER (an extension's OCTET STRING, a BIT
//! STRING) is opened too, so an extension's own structure is mutated.

use libfuzzer_sys::fuzzer_mutate;

const MAX_DEPTH: usize = 24;
const MAX_NODES: usize = 4000;

#[derive(Clone, Debug)]
enum Body {
    Primitive(Vec<u8>),
    Constructed(Vec<Node>),
    /// An OCTET STRING or BIT STRING whose content is DER itself; `lead` is
    /// the BIT STRING's unused-bits byte.
    Wrapped {
        lead: Option<u8>,
        inner: Vec<Node>,
    },
}

#[derive(Clone, Debug)]
struct Node {
    tag: u8,
    body: Body,
    /// Write the length in long form with this many extra bytes (not DER).
    long_len: u8,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn read_header(data: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *data.first()?;
    // High tag numbers are rare in certificates; keep them as opaque bytes.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *data.get(1)? as usize;
    if first < 0x80 {
        return Some((tag, 2, first));
    }
    let n = first & 0x7f;
    if n == 0 || n > 4 || data.len() < 2 + n {
        return None;
    }
    let len = data[2..2 + n].iter().fold(0usize, |acc, b| acc << 8 | *b as usize);
    Some((tag, 2 + n, len))
}

/// Reads as many whole TLVs as `data` holds; the rest is returned.
fn parse_seq<'a>(mut data: &'a [u8], depth: usize, count: &mut usize) -> (Vec<Node>, &'a [u8]) {
    let mut nodes = Vec::new();
    while !data.is_empty() && *count < MAX_NODES {
        let Some((tag, header, len)) = read_header(data) else { break };
        if data.len() - header < len {
            break;
        }
        let content = &data[header..header + len];
        *count += 1;
        nodes.push(Node { tag, body: parse_body(tag, content, depth, count), long_len: 0 });
        data = &data[header + len..];
    }
    (nodes, data)
}

fn parse_whole(data: &[u8], depth: usize, count: &mut usize) -> Option<Vec<Node>> {
    if depth >= MAX_DEPTH {
        return None;
    }
    match parse_seq(data, depth + 1, count) {
        (nodes, []) if !nodes.is_empty() => Some(nodes),
        _ => None,
    }
}

fn parse_body(tag: u8, content: &[u8], depth: usize, count: &mut usize) -> Body {
    if tag & 0x20 != 0 {
        if let Some(inner) = parse_whole(content, depth, count) {
            return Body::Constructed(inner);
        }
        if content.is_empty() {
            return Body::Constructed(Vec::new());
        }
    }
    if tag == 0x04 && content.len() >= 2 {
        if let Some(inner) = parse_whole(content, depth, count) {
            return Body::Wrapped { lead: None, inner };
        }
    }
    if tag == 0x03 && content.len() >= 3 && content[0] == 0 {
        if let Some(inner) = parse_whole(&content[1..], depth, count) {
            return Body::Wrapped { lead: Some(0), inner };
        }
    }
    Body::Primitive(content.to_vec())
}

fn write_len(len: usize, extra: u8, out: &mut Vec<u8>) {
    if len < 0x80 && extra == 0 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(bytes.len() - 1);
    let mut significant = bytes[skip..].to_vec();
    for _ in 0..extra.min(3) {
        significant.insert(0, 0);
    }
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(&significant);
}

fn content_of(node: &Node) -> Vec<u8> {
    let mut content = Vec::new();
    match &node.body {
        Body::Primitive(bytes) => content.extend_from_slice(bytes),
        Body::Constructed(inner) => write_seq(inner, &mut content),
        Body::Wrapped { lead, inner } => {
            content.extend(lead);
            write_seq(inner, &mut content);
        }
    }
    content
}

fn write_seq(nodes: &[Node], out: &mut Vec<u8>) {
    for node in nodes {
        let content = content_of(node);
        out.push(node.tag);
        write_len(content.len(), node.long_len, out);
        out.extend_from_slice(&content);
    }
}

/// Every node, in preorder, as a path of child indexes from the top.
fn paths(nodes: &[Node], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, node) in nodes.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Body::Constructed(inner) | Body::Wrapped { inner, .. } = &node.body {
            paths(inner, prefix, out);
        }
        prefix.pop();
    }
}

/// The list a path's last index points into.
fn parent_list<'a>(top: &'a mut Vec<Node>, path: &[usize]) -> &'a mut Vec<Node> {
    let mut list = top;
    for &i in &path[..path.len() - 1] {
        list = match &mut list[i].body {
            Body::Constructed(inner) | Body::Wrapped { inner, .. } => inner,
            Body::Primitive(_) => unreachable!("a path only goes through lists"),
        };
    }
    list
}

/// The string and other tags names are written with, and a few that are
/// not strings at all.
const TAGS: &[u8] = &[
    0x0c, 0x13, 0x14, 0x16, 0x1e, 0x1c, 0x1a, 0x12, 0x15, 0x19, 0x1b, 0x04, 0x02, 0x05, 0x06, 0x30, 0x31,
    0x80, 0x81, 0x82, 0x86, 0x87, 0x88, 0xa0, 0xa4,
];

/// Contents a decoder must be careful with.
const AWKWARD: &[&[u8]] = &[
    b"",
    b"\0",
    b"a\0b",
    b"\x1b[31m",
    b"\n",
    b"\xff\xfe",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\x00\x41\x00",
    b"\xd8\x00\xdc\x00",
    b"\x00\x00\xfe\xff",
    b"*.example.org",
    b"CN=a,O=b",
    b"\\,+\"<>;#= ",
    b"\x7f\x00\x00\x01",
    b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x01",
    b"\x2b\x06\x01\x04\x01\x82\x37\x14\x02\x03",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
];

fn mutate_tree(top: &mut Vec<Node>, rng: &mut Rng, max_size: usize) -> bool {
    let mut all = Vec::new();
    paths(top, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return false;
    }
    let path = all[rng.below(all.len())].clone();
    let index = *path.last().unwrap();
    match rng.below(9) {
        // Change a primitive's content with libFuzzer's own mutations.
        0 | 1 => {
            let node = &mut parent_list(top, &path)[index];
            let Body::Primitive(bytes) = &mut node.body else { return false };
            let size = bytes.len();
            let cap = (size * 2 + 16).min(max_size).max(size);
            bytes.resize(cap, 0);
            let n = fuzzer_mutate(bytes, size, cap);
            bytes.truncate(n);
        }
        2 => {
            let list = parent_list(top, &path);
            list.remove(index);
        }
        3 => {
            let list = parent_list(top, &path);
            let copy = list[index].clone();
            list.insert(index, copy);
        }
        4 => {
            let node = &mut parent_list(top, &path)[index];
            node.tag = TAGS[rng.below(TAGS.len())];
            if node.tag & 0x20 == 0 {
                if let Body::Constructed(_) | Body::Wrapped { .. } = node.body {
                    node.body = Body::Primitive(content_of(node));
                }
            }
        }
        // Graft a copy of another node here: a SAN where a name was, an
        // extension inside another, a certificate inside a certificate.
        5 => {
            let other = all[rng.below(all.len())].clone();
            let copy = parent_list(top, &other)[*other.last().unwrap()].clone();
            let list = parent_list(top, &path);
            if rng.below(2) == 0 {
                list[index] = copy;
            } else {
                list.insert(index, copy);
            }
        }
        6 => {
            let node = &mut parent_list(top, &path)[index];
            let Body::Primitive(bytes) = &mut node.body else { return false };
            let awkward = AWKWARD[rng.below(AWKWARD.len())];
            match rng.below(3) {
                0 => *bytes = awkward.to_vec(),
                1 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.splice(at..at, awkward.iter().copied());
                }
                _ => {
                    let times = 1 + rng.below(64);
                    *bytes = bytes.repeat(times);
                }
            }
        }
        7 => {
            let node = &mut parent_list(top, &path)[index];
            node.long_len = 1 + rng.below(3) as u8;
        }
        _ => {
            // Swap two siblings: order matters to some readers.
            let list = parent_list(top, &path);
            if list.len() < 2 {
                return false;
            }
            let other = rng.below(list.len());
            list.swap(index, other);
        }
    }
    true
}

/// Mutates `data[..size]`, whose first `keep` bytes are not DER (a mode
/// byte); returns the new size.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32, keep: usize) -> usize {
    let mut rng = Rng(u64::from(seed) << 1 | 1);
    // A third of the time, or when the input is not DER at all, plain bytes.
    if size > keep && rng.below(3) != 0 {
        let mut count = 0;
        let (mut top, tail) = parse_seq(&data[keep..size], 0, &mut count);
        if !top.is_empty() {
            let tail = tail.to_vec();
            for _ in 0..1 + rng.below(3) {
                mutate_tree(&mut top, &mut rng, max_size);
            }
            let mut out = data[..keep].to_vec();
            write_seq(&top, &mut out);
            out.extend_from_slice(&tail);
            if out.len() <= max_size {
                data[..out.len()].copy_from_slice(&out);
                return out.len();
            }
        }
    }
    fuzzer_mutate(data, size, max_size)
}
