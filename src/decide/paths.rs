//! The path trie: each rule's path pattern is a way down from the root,
//! one node per segment, and the rule is filed in a bucket of the node
//! where its pattern ends (one bucket for patterns that end there, one for
//! patterns that end there in `**`).  A decision walks down along the
//! request's segments, taking at each node the literal child named by the
//! segment, the `*` child and the `{ATTR}` children that the identity
//! fills, and looks up the buckets it passes: the rules of other paths are
//! never looked at.
//!
//! The walk keeps no stack: a node knows its parent and by which edge it
//! was reached, and the segment to go back to is found again in the path,
//! so a path of any length is walked with no allocation.

use rustc_hash::FxHashMap as HashMap;

use super::values::{fmix, hash_bytes, same_bytes, word, MULTIPLIER, NONE};
use super::{template_value_ok, CheckedPath, PathPattern, PathSegs, Seg};
use crate::attr::Attr;
use crate::identity::Identity;

const ROOT: u32 = 0;

/// How a node is reached from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Root,
    Literal,
    Star,
    Template(Attr),
}

#[derive(Debug, Clone)]
struct Node {
    parent: u32,
    edge: Edge,
    has_literals: bool,
    /// The segment of a literal edge: text[text_start..][..text_len], and
    /// when it is at most 8 bytes long, those as one `word` too.
    text_start: u32,
    text_len: u32,
    word: u64,
    star: u32,
    /// The `{ATTR}` children form a list: the first here, the others
    /// through each child's `next_template`.
    first_template: u32,
    next_template: u32,
    /// Buckets of the patterns that end here, and that end here in `**`.
    exact: u32,
    rest: u32,
}

/// What the walk does next at its current node.
#[derive(Clone, Copy)]
enum Step {
    Enter,
    Star,
    Template(u32),
    Leave,
}

impl Node {
    /// The step after the literal child: straight on to the first kind of
    /// child there is, as most nodes have only literal ones.
    fn after_literal(&self) -> Step {
        if self.star != NONE {
            Step::Star
        } else {
            self.after_star()
        }
    }

    fn after_star(&self) -> Step {
        match self.first_template {
            NONE => Step::Leave,
            first => Step::Template(first),
        }
    }

    fn new(parent: u32, edge: Edge) -> Node {
        Node {
            parent,
            edge,
            has_literals: false,
            text_start: 0,
            text_len: 0,
            word: 0,
            star: NONE,
            first_template: NONE,
            next_template: NONE,
            exact: NONE,
            rest: NONE,
        }
    }
}

pub(super) struct PathTrie {
    nodes: Vec<Node>,
    /// The literal segments of the policy, each once.
    text: Vec<u8>,
    /// (parent, segment) → the literal child, for decisions: see `Literals`.
    /// Kept as patterns are added too, to find the children they share.
    literals: Literals,
    /// While patterns are added: where in `text` a literal segment is, by
    /// the hash of its bytes, so that each is kept once.  Dropped by `finish`.
    building: Option<HashMap<u64, u32>>,
    /// The literal edges so far.
    literal_count: usize,
    buckets: u32,
}

/// The hash of a literal edge, from its parent and its segment's bytes,
/// and a short segment as one word (else 0).  Most segments are short: one
/// word is hashed, and compared, at once.
#[inline]
fn literal_key(parent: u32, segment: &[u8]) -> (u64, u64) {
    // A multiply is enough to set parents apart: the rest mixes it in.
    let seed = u64::from(parent).wrapping_mul(MULTIPLIER);
    if segment.len() <= 8 {
        let word = word(segment);
        (fmix(word ^ seed ^ ((segment.len() as u64) << 56)), word)
    } else {
        (hash_bytes(seed, segment), 0)
    }
}

/// The literal edges in an open-addressed table of (hash tag, child): one
/// hash of the segment and a compare with the child's own text find the
/// child, where two general maps (segment → number, then (node, number) →
/// child) hashed the segment and the pair each.
struct Literals {
    slots: Box<[(u32, u32)]>,
    mask: usize,
}

impl Literals {
    fn empty() -> Literals {
        Literals { slots: vec![(0, NONE)].into_boxed_slice(), mask: 0 }
    }
}

impl PathTrie {
    pub(super) fn new() -> PathTrie {
        PathTrie {
            nodes: vec![Node::new(NONE, Edge::Root)],
            text: Vec::new(),
            literals: Literals::empty(),
            building: Some(HashMap::default()),
            literal_count: 0,
            buckets: 0,
        }
    }

    pub(super) fn bucket_count(&self) -> usize {
        self.buckets as usize
    }

    fn add_node(&mut self, parent: u32, edge: Edge) -> u32 {
        self.nodes.push(Node::new(parent, edge));
        (self.nodes.len() - 1) as u32
    }

    /// Adds a pattern; returns the bucket its rules belong in.  Only
    /// before `finish`.
    pub(super) fn insert(&mut self, segs: &PathSegs, pattern: &PathPattern) -> u32 {
        let mut node = ROOT;
        for &seg in segs.of(pattern) {
            node = match seg {
                Seg::Literal { start, len } => {
                    let literal = segs.literal(start, len).as_bytes();
                    match self.literal_child(node, literal) {
                        NONE => self.add_literal(node, literal),
                        child => child,
                    }
                }
                Seg::Star => match self.nodes[node as usize].star {
                    NONE => {
                        let child = self.add_node(node, Edge::Star);
                        self.nodes[node as usize].star = child;
                        child
                    }
                    child => child,
                },
                Seg::Template(attr) => {
                    let mut child = self.nodes[node as usize].first_template;
                    while child != NONE && self.nodes[child as usize].edge != Edge::Template(attr) {
                        child = self.nodes[child as usize].next_template;
                    }
                    if child == NONE {
                        child = self.add_node(node, Edge::Template(attr));
                        self.nodes[child as usize].next_template = self.nodes[node as usize].first_template;
                        self.nodes[node as usize].first_template = child;
                    }
                    child
                }
            };
        }
        let next_bucket = self.buckets;
        let n = &mut self.nodes[node as usize];
        let slot = if pattern.rest { &mut n.rest } else { &mut n.exact };
        if *slot == NONE {
            *slot = next_bucket;
            self.buckets += 1;
        }
        *slot
    }

    /// Adds the literal child `segment` of `parent`, which it does not have yet.
    fn add_literal(&mut self, parent: u32, segment: &[u8]) -> u32 {
        let texts = self.building.as_mut().expect("a trie is built before it is finished");
        let text_hash = hash_bytes(0, segment);
        let start = match texts.get(&text_hash) {
            Some(&start)
                if self.text.get(start as usize..start as usize + segment.len()) == Some(segment) =>
            {
                start
            }
            // A segment not seen yet, or one whose hash another has: kept (again).
            found => {
                let start = self.text.len() as u32;
                self.text.extend_from_slice(segment);
                if found.is_none() {
                    texts.insert(text_hash, start);
                }
                start
            }
        };
        let child = self.add_node(parent, Edge::Literal);
        let c = &mut self.nodes[child as usize];
        c.text_start = start;
        c.text_len = segment.len() as u32;
        c.word = literal_key(parent, segment).1;
        self.nodes[parent as usize].has_literals = true;
        self.literal_count += 1;
        // At most half full: a miss, as common as a hit, ends soon.
        let size = (2 * self.literal_count + 1).next_power_of_two();
        if size > self.literals.slots.len() {
            self.literals = Literals { slots: vec![(0, NONE); size].into_boxed_slice(), mask: size - 1 };
            for id in 0..self.nodes.len() as u32 {
                if self.nodes[id as usize].edge == Edge::Literal {
                    self.file_literal(id);
                }
            }
        } else {
            self.file_literal(child);
        }
        child
    }

    /// Puts the literal node `id` in the table of literal edges.
    fn file_literal(&mut self, id: u32) {
        let node = &self.nodes[id as usize];
        let (hash, _) = literal_key(node.parent, self.segment_text(node));
        let slots = &mut self.literals.slots;
        let mask = self.literals.mask;
        let mut i = hash as usize & mask;
        while slots[i].1 != NONE {
            i = (i + 1) & mask;
        }
        slots[i] = ((hash >> 32) as u32, id);
    }

    /// Ends the adding.
    pub(super) fn finish(&mut self) {
        self.building = None;
        self.nodes.shrink_to_fit();
        self.text.shrink_to_fit();
    }

    fn segment_text(&self, node: &Node) -> &[u8] {
        &self.text[node.text_start as usize..][..node.text_len as usize]
    }

    /// The literal child of `parent` named `segment`, or NONE.
    #[inline(always)]
    fn literal_child(&self, parent: u32, segment: &[u8]) -> u32 {
        let (hash, word) = literal_key(parent, segment);
        let tag = (hash >> 32) as u32;
        let mut i = hash as usize & self.literals.mask;
        loop {
            let (slot_tag, child) = self.literals.slots[i];
            if child == NONE {
                return NONE;
            }
            if slot_tag == tag {
                let node = &self.nodes[child as usize];
                if node.parent == parent
                    && node.text_len as usize == segment.len()
                    && if segment.len() <= 8 {
                        node.word == word
                    } else {
                        same_bytes(self.segment_text(node), segment)
                    }
                {
                    return child;
                }
            }
            i = (i + 1) & self.literals.mask;
        }
    }

    /// Calls `visit` with each bucket whose patterns match `path` (the
    /// request path without its leading and trailing `/`, checked by
    /// `checked_path`: no empty segment, and where its `/` are).
    #[inline(always)]
    pub(super) fn walk(&self, path: CheckedPath<'_>, identity: &Identity, mut visit: impl FnMut(u32)) {
        /// The depths whose segment start is kept on the stack; deeper, a
        /// way back up finds it again in the path.
        const KEPT: usize = 8;
        let rest = path.rest;
        // Where the segment from `pos` on ends: at the next `/`, which the
        // check of the path noted for a path of up to 64 bytes.
        let segment_end = |pos: usize| match path.slashes {
            Some(slashes) => match slashes >> pos {
                0 => rest.len(),
                after => pos + after.trailing_zeros() as usize,
            },
            // Segments are short: a plain loop beats memchr's set-up.
            None => rest[pos..].iter().position(|&b| b == b'/').map_or(rest.len(), |i| pos + i),
        };
        // starts[d]: where the segment consumed by the node at depth d + 1
        // on the current way down begins.
        let mut starts = [0usize; KEPT];
        let mut depth = 0;
        let mut node = ROOT;
        // The segment the current node's children consume is rest[pos..end];
        // pos > rest.len() when every segment has been consumed.
        let mut pos = 0;
        let mut end;
        // Most of a way down runs through nodes with literal children only:
        // there is nothing to come back to at such a node, so the walk goes
        // down those without the bookkeeping below, and is done when the
        // path leaves them.  From the first node with another kind of child
        // it goes on in full (and goes back up through these at no cost).
        loop {
            let n = &self.nodes[node as usize];
            if n.star != NONE || n.first_template != NONE {
                break;
            }
            if n.rest != NONE {
                visit(n.rest);
            }
            if pos >= rest.len() {
                if n.exact != NONE {
                    visit(n.exact);
                }
                return;
            }
            end = segment_end(pos);
            let child = if n.has_literals { self.literal_child(node, &rest[pos..end]) } else { NONE };
            if child == NONE {
                return;
            }
            if let Some(start) = starts.get_mut(depth) {
                *start = pos;
            }
            depth += 1;
            node = child;
            pos = end + 1;
        }
        end = 0;
        let mut step = Step::Enter;
        loop {
            let n = &self.nodes[node as usize];
            let mut child = NONE;
            match step {
                Step::Enter => {
                    if n.rest != NONE {
                        visit(n.rest);
                    }
                    if pos >= rest.len() {
                        if n.exact != NONE {
                            visit(n.exact);
                        }
                        step = Step::Leave;
                        continue;
                    }
                    end = segment_end(pos);
                    if n.has_literals {
                        child = self.literal_child(node, &rest[pos..end]);
                    }
                    step = n.after_literal();
                }
                Step::Star => {
                    step = n.after_star();
                    child = n.star;
                }
                Step::Template(NONE) => step = Step::Leave,
                Step::Template(t) => {
                    let candidate = &self.nodes[t as usize];
                    step = Step::Template(candidate.next_template);
                    if let Edge::Template(attr) = candidate.edge {
                        if template_fills(identity, attr, &rest[pos..end]) {
                            child = t;
                        }
                    }
                }
                Step::Leave => {
                    if node == ROOT {
                        return;
                    }
                    // Back to the parent, whose children consume the
                    // segment that ends just before ours.
                    depth -= 1;
                    end = pos - 1;
                    pos = match starts.get(depth) {
                        Some(start) => *start,
                        None => rest[..end].iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1),
                    };
                    let parent = &self.nodes[n.parent as usize];
                    step = match n.edge {
                        Edge::Literal => parent.after_literal(),
                        Edge::Star => parent.after_star(),
                        Edge::Template(_) => Step::Template(n.next_template),
                        Edge::Root => unreachable!("only the root is reached by no edge"),
                    };
                    node = n.parent;
                }
            }
            if child != NONE {
                if let Some(start) = starts.get_mut(depth) {
                    *start = pos;
                }
                depth += 1;
                node = child;
                pos = end + 1;
                step = Step::Enter;
            }
        }
    }
}

/// Whether a `{ATTR}` segment matches `segment` for this identity.
fn template_fills(identity: &Identity, attr: Attr, segment: &[u8]) -> bool {
    identity.values(attr).iter().any(|v| v.as_bytes() == segment && template_value_ok(v))
}
