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

use super::values::NONE;
use super::{template_value_ok, PathPattern, Seg};
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
    star: u32,
    /// The `{ATTR}` children form a list: the first here, the others
    /// through each child's `next_template`.
    first_template: u32,
    next_template: u32,
    /// Buckets of the patterns that end here, and that end here in `**`.
    exact: u32,
    rest: u32,
}

impl Node {
    fn new(parent: u32, edge: Edge) -> Node {
        Node {
            parent,
            edge,
            has_literals: false,
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
    /// Every literal segment of the policy, numbered once.
    segments: HashMap<Box<str>, u32>,
    /// (node, segment number) → the literal child.
    literals: HashMap<u64, u32>,
    buckets: u32,
}

fn literal_key(node: u32, segment: u32) -> u64 {
    (u64::from(node) << 32) | u64::from(segment)
}

impl PathTrie {
    pub(super) fn new() -> PathTrie {
        PathTrie {
            nodes: vec![Node::new(NONE, Edge::Root)],
            segments: HashMap::default(),
            literals: HashMap::default(),
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

    /// Adds a pattern; returns the bucket its rules belong in.
    pub(super) fn insert(&mut self, pattern: PathPattern) -> u32 {
        let mut node = ROOT;
        for seg in pattern.segs.into_vec() {
            node = match seg {
                Seg::Literal(text) => {
                    let segment = match self.segments.get(&*text) {
                        Some(id) => *id,
                        None => {
                            let id = self.segments.len() as u32;
                            self.segments.insert(text, id);
                            id
                        }
                    };
                    match self.literals.get(&literal_key(node, segment)) {
                        Some(child) => *child,
                        None => {
                            let child = self.add_node(node, Edge::Literal);
                            self.literals.insert(literal_key(node, segment), child);
                            self.nodes[node as usize].has_literals = true;
                            child
                        }
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

    pub(super) fn shrink_to_fit(&mut self) {
        self.nodes.shrink_to_fit();
        self.segments.shrink_to_fit();
        self.literals.shrink_to_fit();
    }

    /// Calls `visit` with each bucket whose patterns match the path `rest`
    /// (the request path without its leading and trailing `/`, checked by
    /// `normalized_path`: no empty segment).
    pub(super) fn walk(&self, rest: &str, identity: &Identity, mut visit: impl FnMut(u32)) {
        /// What to do next at the current node.
        #[derive(Clone, Copy)]
        enum Step {
            Enter,
            Literal,
            Star,
            Template(u32),
            Leave,
        }
        let mut node = ROOT;
        // The segment the current node's children consume is rest[pos..end];
        // pos >= rest.len() when every segment has been consumed.
        let mut pos = 0;
        let mut end = 0;
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
                    } else {
                        end = rest[pos..].find('/').map_or(rest.len(), |i| pos + i);
                        step = Step::Literal;
                    }
                }
                Step::Literal => {
                    step = Step::Star;
                    if n.has_literals {
                        if let Some(segment) = self.segments.get(&rest[pos..end]) {
                            child = self.literals.get(&literal_key(node, *segment)).copied().unwrap_or(NONE);
                        }
                    }
                }
                Step::Star => {
                    step = Step::Template(n.first_template);
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
                    // Back to the parent, whose segment ends just before ours.
                    end = pos - 1;
                    pos = rest[..end].rfind('/').map_or(0, |i| i + 1);
                    let parent = &self.nodes[n.parent as usize];
                    step = match n.edge {
                        Edge::Literal => Step::Star,
                        Edge::Star => Step::Template(parent.first_template),
                        Edge::Template(_) => Step::Template(n.next_template),
                        Edge::Root => unreachable!("only the root is reached by no edge"),
                    };
                    node = n.parent;
                }
            }
            if child != NONE {
                node = child;
                pos = end + 1;
                step = Step::Enter;
            }
        }
    }
}

/// Whether a `{ATTR}` segment matches `segment` for this identity.
fn template_fills(identity: &Identity, attr: Attr, segment: &str) -> bool {
    identity.values(attr).iter().any(|v| template_value_ok(v) && **v == *segment)
}
