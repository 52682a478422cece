//! The policy language: parsing statements from files and inline rules,
//! and the builder that turns them into a compiled [`Policy`].
//!
//! Every syntax or meaning error is collected as `FILE:LINE:COL: message`;
//! a builder with any error yields no policy at all.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::net::IpAddr;
use std::ops::{ControlFlow, Range};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::attr::{known_names, Attr, Oid, EKU_NAMES};
use crate::decide::{IpNet, KeySpec, Matcher, Methods, PathPattern, PathSegs, Policy, Rule, Seg, ValueMatch};
use crate::dn::Dn;
use crate::identity::hex;
use crate::lexer::{lex_each, LChar, Lexed, Statement, Token};
use crate::lint::{Lint, Noted};

// Limits on what one builder reads (SPEC invariant 12): a policy source that is a FIFO, a
// device, a file that never ends or includes that fan out must end in bounded time and
// memory with an error, never hang a server's master process or eat its memory.  Each is
// far above what a real policy needs.

/// How deep `include` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// The largest policy file: 100,000 rules (the SPEC's benchmark size) take about 5 MiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// All files one builder reads, together.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// How many files one builder reads, an included file counted each time it is included:
/// ten files that each include the next eight times would otherwise be 8^9 reads.
pub const MAX_FILES_READ: usize = 4096;
/// Statements of one builder in total, ten times the SPEC's largest benchmarked policy.
pub const MAX_STATEMENTS: usize = 1_000_000;
/// Errors kept; after these the builder stops reading, as the policy is refused anyway.
pub const MAX_ERRORS: usize = 1000;

/// One error of a policy, located as `FILE:LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
    pub message: String,
    /// A file could not be read (as opposed to a syntax or meaning error).
    pub io: bool,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file that cannot be read at all has no line to point at.
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Where a statement or token came from: an index into the builder's file
/// table, a line and a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub file: u32,
    pub line: u32,
    pub col: u32,
}

/// A matcher before group names are resolved.
#[derive(Debug, Clone)]
enum RawMatcher {
    Ready(Matcher),
    Group(String, Pos),
}

/// A `group=NAME` matcher of a rule, to be resolved when every group is known: its
/// place among the rule's matchers, which holds a `Matcher::Group` until then.
#[derive(Debug)]
struct GroupRef {
    index: usize,
    name: String,
    pos: Pos,
}

#[derive(Debug)]
enum Parsed {
    Group {
        name: String,
        matchers: Vec<Matcher>,
    },
    Rule {
        deny: bool,
        methods: Methods,
        path: PathPattern,
        matchers: Vec<Matcher>,
        groups: Vec<GroupRef>,
        pos: Pos,
    },
    RequireKey {
        specs: Vec<KeySpec>,
        pos: Pos,
    },
    RequireLifetime {
        max_secs: i64,
        pos: Pos,
    },
}

/// The method lists read so far, by their token's text: rules mostly repeat a few, and
/// one list kept for them all is one allocation instead of one per method per rule.
type MethodsRead = rustc_hash::FxHashMap<Box<str>, Methods>;

/// Enough for any real policy; past it, lists are parsed each time (and still work).
const MAX_METHOD_LISTS_KEPT: usize = 64;

/// Collects policy sources, then compiles them into one [`Policy`].
#[derive(Default)]
pub struct PolicyBuilder {
    files: Vec<Arc<str>>,
    file_ids: HashMap<Arc<str>, u32>,
    parsed: Vec<Parsed>,
    errors: Vec<PolicyError>,
    /// Files being read, to refuse include loops.
    reading: Vec<PathBuf>,
    /// Counted against the MAX_ limits above.
    files_read: usize,
    bytes_read: u64,
    statements: usize,
    /// A limit was reached: nothing more is read.  The builder has an error.
    stopped: bool,
    /// Set by `collect_warnings`.
    lint: Option<Box<Lint>>,
    /// The line the first source starts at (an inline statement's own
    /// line), where an error about the policy as a whole points.
    first_line: u32,
    methods_read: MethodsRead,
    /// The segments of the rules' paths.
    path_segs: PathSegs,
}

impl PolicyBuilder {
    pub fn new() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Records that reading `what` failed inside the library itself (a
    /// contained panic): whatever was read of it may be incomplete, so the
    /// builder must never build.
    pub fn poison(&mut self, what: &str) {
        self.errors.push(PolicyError {
            file: what.into(),
            line: 0,
            col: 0,
            message: "internal error while reading the policy; nothing of it is used".into(),
            io: false,
        });
    }

    /// Also notes what `build_with_warnings` warns about.  Only for linting:
    /// it keeps a copy of every statement read.
    pub fn collect_warnings(&mut self) {
        self.lint.get_or_insert_with(Box::default);
    }

    /// Builds as `build` does, and returns the warnings found (none unless
    /// `collect_warnings` was called first), in the order of the files and
    /// their positions.  Warnings never keep a policy from building.
    pub fn build_with_warnings(mut self) -> (Result<Policy, Vec<PolicyError>>, Vec<PolicyError>) {
        let mut warnings: Vec<PolicyError> = match self.lint.take() {
            Some(lint) => lint
                .finish(&self.files)
                .into_iter()
                .map(|(pos, message)| PolicyError {
                    file: self.files[pos.file as usize].clone(),
                    line: pos.line,
                    col: pos.col,
                    message,
                    io: false,
                })
                .collect(),
            None => Vec::new(),
        };
        // A file included more than once is read, and warned about, each time.
        warnings.sort_by(|a, b| {
            let order = |e: &PolicyError| (self.file_ids.get(&e.file).copied().unwrap_or(0), e.line, e.col);
            order(a).cmp(&order(b)).then_with(|| a.message.cmp(&b.message))
        });
        warnings.dedup();
        (self.build(), warnings)
    }

    /// The errors found so far.
    pub fn errors(&self) -> &[PolicyError] {
        &self.errors
    }

    fn file_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.file_ids.get(name) {
            return *id;
        }
        let name: Arc<str> = name.into();
        let id = self.files.len() as u32;
        self.files.push(name.clone());
        self.file_ids.insert(name, id);
        id
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        let file = self.files[pos.file as usize].clone();
        self.push_error(PolicyError {
            file,
            line: pos.line,
            col: pos.col,
            message: message.into(),
            io: false,
        });
    }

    /// Keeps an error, up to MAX_ERRORS; the one after them says so and stops the builder.
    fn push_error(&mut self, error: PolicyError) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error);
        } else if !self.stopped {
            self.stopped = true;
            self.errors.push(PolicyError {
                message: format!("more than {MAX_ERRORS} errors; the policy is not read further"),
                io: false,
                ..error
            });
        }
    }

    /// Records that a limit was reached at `pos` and stops reading.
    fn limit_reached(&mut self, pos: Pos, message: String) {
        self.error(pos, message);
        self.stopped = true;
    }

    /// Records that the file `name` cannot be used as a policy source: at the include
    /// statement that names it, or, for a file given directly, at the file itself.
    fn file_error(&mut self, name: &str, included_at: Option<Pos>, message: String, io: bool) {
        let (file, line, col) = match included_at {
            Some(at) => (self.files[at.file as usize].clone(), at.line, at.col),
            None => (Arc::from(name), 0, 0),
        };
        self.push_error(PolicyError { file, line, col, message, io });
    }

    /// Reads and parses a policy file.  Errors are kept for `build`.
    pub fn add_file(&mut self, path: &Path) {
        self.add_file_from(path, None);
    }

    fn add_file_from(&mut self, path: &Path, included_at: Option<Pos>) {
        if self.stopped {
            return;
        }
        let name = path.to_string_lossy().into_owned();
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(at) = included_at {
            if self.reading.contains(&canonical) {
                self.error(at, format!("`include {name}` makes a loop"));
                return;
            }
            if self.reading.len() >= MAX_INCLUDE_DEPTH {
                self.error(at, format!("`include {name}` nests includes deeper than {MAX_INCLUDE_DEPTH}"));
                return;
            }
        }
        self.files_read += 1;
        if self.files_read > MAX_FILES_READ {
            let message = format!(
                "more than {MAX_FILES_READ} policy files read in total (an included file counts each time)"
            );
            match included_at {
                Some(at) => self.limit_reached(at, message),
                None => {
                    self.file_error(&name, None, message, false);
                    self.stopped = true;
                }
            }
            return;
        }
        let bytes = match self.read_source(path, &name) {
            Ok(bytes) => bytes,
            Err(message) => return self.file_error(&name, included_at, message, true),
        };
        let file = self.file_id(&name);
        let text = match String::from_utf8(bytes) {
            // Editors on Windows start UTF-8 files with a byte order mark; it is
            // not part of the first statement, and columns count after it.
            Ok(text) if text.starts_with('\u{feff}') => text['\u{feff}'.len_utf8()..].to_string(),
            Ok(text) => text,
            Err(e) => {
                let (line, col, byte) = first_invalid_byte(e.as_bytes(), e.utf8_error().valid_up_to());
                self.error(
                    Pos { file, line, col },
                    format!("byte 0x{byte:02X} is not UTF-8 (a policy file is UTF-8 text)"),
                );
                return;
            }
        };
        self.reading.push(canonical);
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        self.add_text(&text, file, 1, &base);
        self.reading.pop();
    }

    /// Reads one policy file whole, within the size limits.  It is opened without blocking
    /// (a FIFO would otherwise wait for a writer forever) and without becoming the
    /// controlling terminal, and the opened handle itself is checked, so nothing can be
    /// swapped in between a check and the read.
    fn read_source(&mut self, path: &Path, name: &str) -> Result<Vec<u8>, String> {
        let cannot = |e: std::io::Error| format!("cannot read policy file {name}: {e}");
        let file: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(cannot)?;
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err(format!("policy file {name} is not a regular file ({})", kind_of(meta.file_type())));
        }
        // The size may change while it is read (or be 0 for files in /proc): the read
        // itself is limited too.
        let allowed = MAX_FILE_BYTES.min(MAX_TOTAL_BYTES.saturating_sub(self.bytes_read));
        let mut bytes = Vec::new();
        if meta.len() <= allowed {
            bytes.reserve(meta.len() as usize);
            file.take(allowed + 1).read_to_end(&mut bytes).map_err(cannot)?;
        }
        let size = meta.len().max(bytes.len() as u64);
        if size > MAX_FILE_BYTES {
            return Err(format!("policy file {name} is larger than {} MiB", MAX_FILE_BYTES >> 20));
        }
        if size > allowed {
            return Err(format!(
                "policy file {name} takes the policy files over {} MiB in total",
                MAX_TOTAL_BYTES >> 20
            ));
        }
        self.bytes_read += size;
        Ok(bytes)
    }

    /// Parses one inline statement written in `origin` at `line`.
    pub fn add_statement(&mut self, statement: &str, origin: &str, line: u32) {
        if self.files.is_empty() {
            self.first_line = line;
        }
        let file = self.file_id(origin);
        let base = Path::new(origin).parent().map(Path::to_path_buf).unwrap_or_default();
        self.add_text(statement, file, line, &base);
    }

    fn add_text(&mut self, text: &str, file: u32, first_line: u32, base: &Path) {
        if self.stopped {
            return;
        }
        let _ = lex_each(text, first_line, |item| {
            match item {
                Lexed::Statement(statement) => self.add_parsed(statement, file, base),
                Lexed::Error((line, col, message)) => self.error(Pos { file, line, col }, message),
            }
            if self.stopped {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
    }

    fn add_parsed(&mut self, statement: &Statement, file: u32, base: &Path) {
        let tokens = &statement.tokens;
        let pos = |t: &Token| Pos { file, line: t.line, col: t.col };
        self.statements += 1;
        if self.statements > MAX_STATEMENTS {
            self.limit_reached(pos(&tokens[0]), format!("more than {MAX_STATEMENTS} statements in total"));
            return;
        }
        let keyword = tokens[0].text();
        let result = match keyword {
            "group" => parse_group(tokens, file),
            "allow" | "deny" => {
                parse_rule(tokens, file, keyword == "deny", &mut self.methods_read, &mut self.path_segs)
            }
            "require" => parse_require(tokens, file),
            "include" => {
                if tokens.len() != 2 {
                    Err((pos(&tokens[0]), "`include` takes exactly one file name".to_string()))
                } else {
                    if let Some(lint) = self.lint.as_mut() {
                        lint.statement(tokens, file, None, std::iter::empty());
                    }
                    let target = base.join(tokens[1].text());
                    self.add_file_from(&target, Some(pos(&tokens[1])));
                    return;
                }
            }
            other => Err((
                pos(&tokens[0]),
                format!("unknown statement `{other}` (expected group, allow, deny, require or include)"),
            )),
        };
        match result {
            Ok(parsed) => {
                if let Some(lint) = self.lint.as_mut() {
                    note(lint, tokens, file, &parsed);
                }
                self.parsed.push(parsed)
            }
            Err((at, message)) => self.error(at, message),
        }
    }

    /// Resolves groups and compiles the index.  Any error, now or earlier,
    /// means no policy.
    pub fn build(mut self) -> Result<Policy, Vec<PolicyError>> {
        if self.files.is_empty() && self.errors.is_empty() {
            return Err(vec![PolicyError {
                file: "(policy)".into(),
                line: 0,
                col: 0,
                message: "no policy was given".into(),
                io: false,
            }]);
        }
        if self.stopped {
            // What was read stops somewhere in the middle: resolving it would only add
            // errors about groups defined further on.
            return Err(self.sorted_errors());
        }
        let mut group_ids: HashMap<String, u32> = HashMap::new();
        for parsed in &self.parsed {
            if let Parsed::Group { name, .. } = parsed {
                let next = group_ids.len() as u32;
                group_ids.entry(name.clone()).or_insert(next);
            }
        }
        let parsed = std::mem::take(&mut self.parsed);
        let mut group_lines = Vec::new();
        let mut rules = Vec::new();
        let mut key_requirements = Vec::new();
        let mut lifetime_requirements = Vec::new();
        for item in parsed {
            match item {
                Parsed::Group { name, matchers } => group_lines.push((group_ids[&name], matchers)),
                Parsed::Rule { deny, methods, path, mut matchers, groups, pos } => {
                    if self.resolve(&mut matchers, groups, &group_ids) {
                        rules.push(Rule {
                            deny,
                            methods,
                            path,
                            matchers: matchers.into_boxed_slice(),
                            file: pos.file,
                            line: pos.line,
                        });
                    }
                }
                Parsed::RequireKey { specs, pos } => key_requirements.push((specs, pos)),
                Parsed::RequireLifetime { max_secs, pos } => lifetime_requirements.push((max_secs, pos)),
            }
        }
        if rules.is_empty() && self.errors.is_empty() {
            let first = self.files[0].clone();
            self.errors.push(PolicyError {
                file: first,
                line: self.first_line.max(1),
                col: 1,
                message: "the policy has no allow or deny statement, so it would refuse everything".into(),
                io: false,
            });
        }
        if !self.errors.is_empty() {
            return Err(self.sorted_errors());
        }
        let files: Vec<Box<str>> = self.files.iter().map(|f| Box::from(&**f)).collect();
        let mut policy = Policy::new(
            files,
            rules,
            &self.path_segs,
            group_lines,
            group_ids.len(),
            key_requirements,
            lifetime_requirements,
        );
        let mut names = vec![Box::<str>::from(""); group_ids.len()];
        for (name, id) in group_ids {
            names[id as usize] = name.into();
        }
        policy.group_names = names;
        Ok(policy)
    }

    /// The errors in the order of the files and their positions (group errors are found
    /// only after the statements after them).
    fn sorted_errors(&mut self) -> Vec<PolicyError> {
        let order = |e: &PolicyError| (self.file_ids.get(&e.file).copied().unwrap_or(0), e.line, e.col);
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by_key(order);
        errors
    }

    /// Puts each group's number in its place among `matchers`; false if a group is unknown.
    fn resolve(
        &mut self,
        matchers: &mut [Matcher],
        refs: Vec<GroupRef>,
        groups: &HashMap<String, u32>,
    ) -> bool {
        let mut ok = true;
        for GroupRef { index, name, pos } in refs {
            match groups.get(&name) {
                Some(id) => matchers[index] = Matcher::Group(*id),
                None => {
                    self.error(pos, format!("unknown group `{name}` (define it with `group {name} ...`)"));
                    ok = false;
                }
            }
        }
        ok
    }
}

/// Hands a parsed statement's matchers to the lint.
fn note(lint: &mut Lint, tokens: &[Token], file: u32, parsed: &Parsed) {
    let noted = |matchers: &[Matcher], groups: &[GroupRef]| -> Vec<Noted> {
        let mut groups = groups.iter().peekable();
        matchers
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match (groups.next_if(|g| g.index == i), m) {
                (Some(group), _) => Some(Noted::Group(group.name.clone())),
                (None, Matcher::Attr(attr, _)) => Some(Noted::Attr(*attr)),
                (None, _) => None,
            })
            .collect()
    };
    match parsed {
        Parsed::Group { name, matchers } => {
            lint.statement(tokens, file, Some(name), noted(matchers, &[]).into_iter())
        }
        Parsed::Rule { matchers, groups, .. } => {
            lint.statement(tokens, file, None, noted(matchers, groups).into_iter())
        }
        Parsed::RequireKey { .. } | Parsed::RequireLifetime { .. } => {
            lint.statement(tokens, file, None, std::iter::empty())
        }
    }
}

/// What a file that is not a regular file is, for the error message.
fn kind_of(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of another kind"
    }
}

/// The line and column (in characters, as the lexer counts them) of the byte at `at`, the
/// first that is not UTF-8, and that byte.
fn first_invalid_byte(bytes: &[u8], at: usize) -> (u32, u32, u8) {
    let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', valid.as_bytes()).count();
    let col = 1 + valid[line_start..].chars().count();
    (line as u32, col as u32, bytes[at])
}

type ParseResult<T> = Result<T, (Pos, String)>;

fn at(file: u32, token: &Token) -> Pos {
    Pos { file, line: token.line, col: token.col }
}

fn at_char(file: u32, c: &LChar) -> Pos {
    Pos { file, line: c.line, col: c.col }
}

fn parse_group(tokens: &[Token], file: u32) -> ParseResult<Parsed> {
    if tokens.len() < 3 {
        return Err((at(file, &tokens[0]), "expected `group NAME MATCHER...`".into()));
    }
    let name = tokens[1].text().to_string();
    if !valid_group_name(&name) {
        return Err((
            at(file, &tokens[1]),
            format!("bad group name `{name}` (letters, digits, `_`, `-` and `.`)"),
        ));
    }
    let mut matchers = Vec::with_capacity(tokens.len() - 2);
    for token in &tokens[2..] {
        match parse_matcher(token, file)? {
            RawMatcher::Group(..) => {
                return Err((at(file, token), "a group cannot contain another group".into()));
            }
            RawMatcher::Ready(m) => matchers.push(m),
        }
    }
    Ok(Parsed::Group { name, matchers })
}

fn valid_group_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn parse_rule(
    tokens: &[Token],
    file: u32,
    deny: bool,
    methods_read: &mut MethodsRead,
    path_segs: &mut PathSegs,
) -> ParseResult<Parsed> {
    let keyword = if deny { "deny" } else { "allow" };
    if tokens.len() < 4 {
        return Err((at(file, &tokens[0]), format!("expected `{keyword} METHODS PATH MATCHER...`")));
    }
    let methods = match methods_read.get(tokens[1].text()) {
        Some(methods) => methods.clone(),
        None => {
            let methods = parse_methods(&tokens[1], file)?;
            if methods_read.len() < MAX_METHOD_LISTS_KEPT {
                methods_read.insert(tokens[1].text().into(), methods.clone());
            }
            methods
        }
    };
    let path = parse_path(&tokens[2], file, path_segs)?;
    let mut matchers = Vec::with_capacity(tokens.len() - 3);
    let mut groups = Vec::new();
    for token in &tokens[3..] {
        match parse_matcher(token, file)? {
            RawMatcher::Ready(m) => matchers.push(m),
            RawMatcher::Group(name, pos) => {
                groups.push(GroupRef { index: matchers.len(), name, pos });
                matchers.push(Matcher::Group(0));
            }
        }
    }
    Ok(Parsed::Rule { deny, methods, path, matchers, groups, pos: at(file, &tokens[0]) })
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn parse_methods(token: &Token, file: u32) -> ParseResult<Methods> {
    let text = token.text();
    if text == "*" {
        return Ok(Methods::Any);
    }
    let mut list: Vec<Box<str>> = Vec::new();
    for method in text.split(',') {
        if method.is_empty() || !method.chars().all(is_tchar) || method == "*" {
            return Err((at(file, token), format!("bad method list `{text}` (`*` or e.g. `GET,POST`)")));
        }
        if method.chars().any(|c| c.is_ascii_lowercase()) {
            return Err((
                at(file, token),
                format!("methods are case-sensitive: write `{}`", method.to_ascii_uppercase()),
            ));
        }
        list.push(method.into());
    }
    // GET also allows HEAD, as nginx's limit_except does.
    if list.iter().any(|m| &**m == "GET") && !list.iter().any(|m| &**m == "HEAD") {
        list.push("HEAD".into());
    }
    Ok(Methods::List(list.into()))
}

/// Parses a path pattern, its segments added to `segs` (and none if it is wrong).
fn parse_path(token: &Token, file: u32, segs: &mut PathSegs) -> ParseResult<PathPattern> {
    let (first, text_len) = (segs.segs.len(), segs.text.len());
    let parsed = parse_path_segments(token, file, segs);
    if parsed.is_err() {
        segs.segs.truncate(first);
        segs.text.truncate(text_len);
    }
    let rest = parsed?;
    Ok(PathPattern { first: first as u32, len: (segs.segs.len() - first) as u32, rest })
}

/// Adds the segments of a path pattern to `segs`; whether it ends in `**`.
fn parse_path_segments(token: &Token, file: u32, segs: &mut PathSegs) -> ParseResult<bool> {
    let chars = &token.chars;
    if chars.first().map(|c| c.c) != Some('/') {
        return Err((at(file, token), format!("a path must start with `/`, not `{}`", token.text())));
    }
    // Split the characters (with their flags) at `/`: each segment's range
    // of characters, the slash before it included, so that an empty segment
    // can be pointed at.  A last segment that is empty (a path ending in
    // `/`) is none.
    let len = chars.len();
    let segments = || {
        let mut start = 1;
        (1..=len).filter(|&i| i == len || (chars[i].c == '/' && !chars[i].escaped)).filter_map(move |end| {
            let range = start - 1..end;
            start = end + 1;
            (range.len() > 1 || end != len).then_some(range)
        })
    };
    let is_rest = |range: &Range<usize>| {
        range.len() == 3 && chars[range.start + 1..range.end].iter().all(|c| c.c == '*' && !c.escaped)
    };
    let mut rest = false;
    let mut ranges = segments().peekable();
    while let Some(range) = ranges.next() {
        let (slash, seg) = (&chars[range.start], &chars[range.start + 1..range.end]);
        let text = token.text_of(range.start + 1..range.end);
        let text = &*text;
        let pos = seg.first().map(|c| at_char(file, c)).unwrap_or(at_char(file, slash));
        if text.is_empty() {
            return Err((pos, "empty path segment (`//`)".into()));
        }
        if text == "." || text == ".." {
            return Err((pos, format!("`{text}` segments never match a normalized path")));
        }
        if is_rest(&range) {
            if ranges.peek().is_some() {
                return Err((pos, "`**` may only be the last segment".into()));
            }
            rest = true;
        } else if text == "*" && !seg[0].escaped {
            segs.segs.push(Seg::Star);
        } else if text.starts_with('{') && text.ends_with('}') && !seg[0].escaped {
            let name = &text[1..text.len() - 1];
            let attr = Attr::parse(name).ok_or_else(|| {
                (pos, format!("unknown attribute `{name}` in path template (known: {})", known_names()))
            })?;
            segs.segs.push(Seg::Template(attr));
        } else if seg.iter().any(|c| !c.escaped && matches!(c.c, '*' | '{' | '}')) {
            return Err((pos, format!("`*` and `{{ATTR}}` must be whole segments, not part of `{text}`")));
        } else {
            let start = segs.text.len() as u32;
            segs.text.push_str(text);
            segs.segs.push(Seg::Literal { start, len: text.len() as u32 });
        }
    }
    Ok(rest)
}

fn parse_matcher(token: &Token, file: u32) -> ParseResult<RawMatcher> {
    let chars = &token.chars;
    let text = token.text();
    if text == "any" && chars.iter().all(|c| !c.quoted && !c.escaped) {
        return Ok(RawMatcher::Ready(Matcher::Any));
    }
    let eq = chars.iter().position(|c| c.c == '=' && !c.quoted && !c.escaped).ok_or_else(|| {
        (at(file, token), format!("expected `any`, `group=NAME` or `ATTR=VALUE`, not `{text}`"))
    })?;
    let name = token.text_of(0..eq);
    let value = eq + 1..chars.len();
    let value_pos = chars.get(eq + 1).map(|c| at_char(file, c)).unwrap_or(at(file, token));
    if name == "group" {
        let group = token.text_of(value);
        if !valid_group_name(&group) {
            return Err((value_pos, format!("bad group name `{group}`")));
        }
        return Ok(RawMatcher::Group(group.into_owned(), value_pos));
    }
    let attr = Attr::parse(&name)
        .ok_or_else(|| (at(file, token), format!("unknown attribute `{name}` (known: {})", known_names())))?;
    let value = parse_value(attr, token, value, value_pos, file)?;
    Ok(RawMatcher::Ready(Matcher::Attr(attr, value)))
}

/// The value of `attr` written as `token.chars[value]`.
fn parse_value(
    attr: Attr,
    token: &Token,
    value: Range<usize>,
    pos: Pos,
    file: u32,
) -> ParseResult<ValueMatch> {
    let chars = &token.chars[value.clone()];
    let prefix = chars.last().map(|c| c.c == '*' && !c.escaped) == Some(true);
    let body = if prefix { &chars[..chars.len() - 1] } else { chars };
    let text = token.text_of(value.start..value.start + body.len());
    let text = &*text;
    if text.is_empty() && !prefix {
        return Err((pos, format!("empty value for {attr}")));
    }
    if attr.is_dn() {
        if prefix {
            return Err((pos, format!("{attr} is compared as a whole name; a trailing `*` is not allowed")));
        }
        return match Dn::parse_rfc4514(text) {
            Ok(dn) => Ok(ValueMatch::Exact(dn.canonical_key().into())),
            Err(_) if crate::lint::slash_form(text).is_some() => Err((
                pos,
                format!(
                    "bad {attr} name: `{text}` is openssl's old /TYPE=value form; write it as RFC 4514 \
                     does, most specific part first: `{}`",
                    crate::lint::slash_form(text).unwrap_or_default()
                ),
            )),
            Err((offset, message)) => {
                let col_shift = text[..offset.min(text.len())].chars().count();
                let at_offset = body.get(col_shift).map(|c| at_char(file, c)).unwrap_or(pos);
                Err((at_offset, format!("bad {attr} name: {message}")))
            }
        };
    }
    if attr.is_hex() {
        if prefix {
            return Err((pos, format!("{attr} values are exact; a trailing `*` is not allowed")));
        }
        return parse_hex(attr, text).map(ValueMatch::Exact).map_err(|m| (pos, m));
    }
    if attr == Attr::SanDns {
        let wildcard = body.len() >= 2 && body[0].c == '*' && !body[0].escaped && body[1].c == '.';
        if wildcard {
            if prefix || text.len() < 3 {
                return Err((pos, "`*.` must be followed by a domain".into()));
            }
            return Ok(ValueMatch::DnsLabel(text[2..].to_ascii_lowercase().into()));
        }
        let lower = text.to_ascii_lowercase();
        return Ok(if prefix { ValueMatch::Prefix(lower.into()) } else { ValueMatch::Exact(lower.into()) });
    }
    if attr == Attr::SanIp && !prefix {
        return parse_ip(text).map_err(|m| (pos, m));
    }
    if attr.is_oid_list() {
        if prefix {
            return Err((pos, format!("{attr} values are exact OIDs; a trailing `*` is not allowed")));
        }
        let named = match attr {
            Attr::Eku => EKU_NAMES.iter().find(|(name, _)| *name == text),
            _ => None,
        };
        if let Some((_, oid)) = named {
            return Ok(ValueMatch::Exact((*oid).into()));
        }
        return match Oid::from_dotted(text) {
            Some(oid) => Ok(ValueMatch::Exact(oid.to_string().into())),
            None if attr == Attr::Eku => {
                let names: Vec<&str> = EKU_NAMES.iter().map(|(name, _)| *name).collect();
                Err((
                    pos,
                    format!("`{text}` is not an extended key usage ({} or a dotted OID)", names.join(", ")),
                ))
            }
            None => Err((pos, format!("`{text}` is not a dotted OID (certificatePolicies are OIDs)"))),
        };
    }
    if let Attr::SanOther(_) = attr {
        // A value the identity shows as `#` and hex is compared in its case.
        let hex_form =
            text.len() > 1 && text.starts_with('#') && text[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if hex_form && !prefix {
            return Ok(ValueMatch::Exact(text.to_ascii_uppercase().into()));
        }
    }
    Ok(if prefix { ValueMatch::Prefix(text.into()) } else { ValueMatch::Exact(text.into()) })
}

/// An address, exact as the identity writes it (an IPv4-mapped IPv6
/// address is IPv4), or a network in CIDR form (`10.0.0.0/8`,
/// `2001:db8::/32`) whose bits past its length are zero.  An IPv4-mapped
/// IPv6 network of 96 bits or more is the IPv4 network it maps.
fn parse_ip(text: &str) -> Result<ValueMatch, String> {
    let (addr, len) = match text.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text, None),
    };
    let ip: IpAddr =
        addr.parse().map_err(|_| format!("`{text}` is not an IPv4 or IPv6 address or network"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        None => return Ok(ValueMatch::Exact(ip.to_canonical().to_string().into())),
        Some(len) => len
            .parse()
            .ok()
            .filter(|n| *n <= max && (len == "0" || !len.starts_with('0')))
            .ok_or_else(|| format!("`{text}`: the network length must be 0 to {max}"))?,
    };
    let (ip, len) = match ip {
        IpAddr::V6(v6) if len >= 96 && v6.to_ipv4_mapped().is_some() => (ip.to_canonical(), len - 96),
        _ => (ip, len),
    };
    let net = IpNet::of(ip, len);
    if IpNet::of(ip, if ip.is_ipv4() { 32 } else { 128 }).net != net.net {
        return Err(format!("`{text}` has bits set past its network length (write `{}`)", net_text(&net)));
    }
    if len == if ip.is_ipv4() { 32 } else { 128 } {
        return Ok(ValueMatch::Exact(ip.to_string().into()));
    }
    Ok(ValueMatch::IpNet(net))
}

fn net_text(net: &IpNet) -> String {
    let addr: IpAddr = if net.v4 {
        IpAddr::from([net.net[0], net.net[1], net.net[2], net.net[3]])
    } else {
        IpAddr::from(net.net)
    };
    format!("{addr}/{}", net.len)
}

/// Normalizes a hex value: colons dropped, upper case; serials lose their
/// leading zero bytes, hashes must be 32 bytes.
fn parse_hex(attr: Attr, text: &str) -> Result<Box<str>, String> {
    let digits: String = text.chars().filter(|&c| c != ':').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`{text}` is not a hex value for {attr}"));
    }
    let padded = if digits.len() % 2 == 1 { format!("0{digits}") } else { digits };
    let bytes: Vec<u8> = (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).unwrap_or(0))
        .collect();
    match attr {
        Attr::Serial => Ok(crate::identity::serial_hex(&bytes).into()),
        _ if bytes.len() != 32 => Err(format!("{attr} is a SHA-256 hash: 32 bytes, not {}", bytes.len())),
        _ => Ok(hex(&bytes).into()),
    }
}

fn parse_require(tokens: &[Token], file: u32) -> ParseResult<Parsed> {
    let usage = "expected `require key SPEC...` or `require lifetime<=N(d|h)`";
    let Some(what) = tokens.get(1) else {
        return Err((at(file, &tokens[0]), usage.into()));
    };
    let text = what.text();
    if text == "key" {
        if tokens.len() < 3 {
            return Err((at(file, what), "`require key` needs at least one key type".into()));
        }
        let specs = tokens[2..]
            .iter()
            .map(|t| {
                parse_key_spec(t.text()).ok_or_else(|| {
                    (
                        at(file, t),
                        format!("bad key type `{}` (ec>=BITS, rsa>=BITS, ed25519, ed448)", t.text()),
                    )
                })
            })
            .collect::<ParseResult<Vec<_>>>()?;
        return Ok(Parsed::RequireKey { specs, pos: at(file, &tokens[0]) });
    }
    if let Some(limit) = text.strip_prefix("lifetime<=") {
        if tokens.len() != 2 {
            return Err((at(file, &tokens[2]), "unexpected text after the lifetime".into()));
        }
        let (number, scale) = match (limit.strip_suffix('d'), limit.strip_suffix('h')) {
            (Some(days), _) => (days, 86_400),
            (_, Some(hours)) => (hours, 3_600),
            _ => return Err((at(file, what), format!("bad lifetime `{limit}` (e.g. 90d or 12h)"))),
        };
        let n: i64 = number
            .parse()
            .ok()
            .filter(|n| *n > 0 && *n < 1_000_000)
            .ok_or_else(|| (at(file, what), format!("bad lifetime `{limit}` (e.g. 90d or 12h)")))?;
        return Ok(Parsed::RequireLifetime { max_secs: n * scale, pos: at(file, &tokens[0]) });
    }
    Err((at(file, what), usage.into()))
}

fn parse_key_spec(text: &str) -> Option<KeySpec> {
    let (kind, min_bits) = match text.split_once(">=") {
        Some((kind, bits)) => (kind, bits.parse::<u32>().ok().filter(|b| *b > 0)?),
        None => (text, 0),
    };
    match kind {
        "rsa" => Some(KeySpec::Rsa(min_bits)),
        "ec" => Some(KeySpec::Ec(min_bits)),
        "ed25519" if min_bits == 0 => Some(KeySpec::Ed25519),
        "ed448" if min_bits == 0 => Some(KeySpec::Ed448),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Hostile policy sources (SPEC invariant 12): each ends with an error at its place,
    //! in bounded time.  The guard is a hang detector, not a timing: without the limits
    //! these cases block forever or run for hours.
    use super::*;
    use std::sync::mpsc::{channel, RecvTimeoutError};
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cert-authz-sources-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().expect("running mkfifo");
        assert!(status.success(), "mkfifo {}", path.display());
    }

    /// Runs `f` on a thread; fails the test if it has not ended after 30 s.
    fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(value) => value,
            Err(RecvTimeoutError::Timeout) => panic!("{what} did not end within 30 s"),
            Err(RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
        }
    }

    /// The errors of compiling the file `path`, as they are printed, within the guard.
    fn file_errors(path: &Path) -> Vec<PolicyError> {
        let path = path.to_path_buf();
        within(&format!("reading {}", path.display()), move || {
            let mut builder = PolicyBuilder::new();
            builder.add_file(&path);
            match builder.build() {
                Ok(policy) => panic!("{} compiled to {} rules", path.display(), policy.rule_count()),
                Err(errors) => errors,
            }
        })
    }

    fn texts(errors: &[PolicyError]) -> Vec<String> {
        errors.iter().map(|e| e.to_string()).collect()
    }

    fn write(path: &Path, text: &str) -> PathBuf {
        std::fs::write(path, text).unwrap();
        path.to_path_buf()
    }

    #[test]
    fn an_include_that_is_not_a_regular_file_is_an_error_at_the_include() {
        let dir = scratch("kinds");
        mkfifo(&dir.join("pipe"));
        std::fs::create_dir(dir.join("subdir")).unwrap();
        let cases = [
            (dir.join("pipe").display().to_string(), "a FIFO"),
            ("/dev/zero".to_string(), "a character device"),
            (dir.join("subdir").display().to_string(), "a directory"),
        ];
        for (target, kind) in cases {
            let main = write(&dir.join("main.policy"), &format!("allow * / any\ninclude {target}\n"));
            let errors = file_errors(&main);
            let want = format!("{}:2:9: policy file {target} is not a regular file ({kind})", main.display());
            assert_eq!(texts(&errors), vec![want]);
            assert!(errors[0].io, "{errors:?}");
        }
    }

    #[test]
    fn a_policy_file_that_is_not_a_regular_file_is_an_error_at_the_file() {
        let dir = scratch("top");
        let pipe = dir.join("pipe");
        mkfifo(&pipe);
        let want = format!("{0}: policy file {0} is not a regular file (a FIFO)", pipe.display());
        assert_eq!(texts(&file_errors(&pipe)), vec![want]);
        assert_eq!(
            texts(&file_errors(Path::new("/dev/null"))),
            vec!["/dev/null: policy file /dev/null is not a regular file (a character device)"]
        );
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_read_as_that_file() {
        let dir = scratch("symlink");
        write(&dir.join("rules.policy"), "allow * /a any\n");
        std::os::unix::fs::symlink("rules.policy", dir.join("link.policy")).unwrap();
        let main = write(&dir.join("main.policy"), "include link.policy\nallow * /b any\n");
        let mut builder = PolicyBuilder::new();
        builder.add_file(&main);
        assert_eq!(builder.build().map(|p| p.rule_count()), Ok(2));
        let mut builder = PolicyBuilder::new();
        builder.add_file(&dir.join("link.policy"));
        assert_eq!(builder.build().map(|p| p.rule_count()), Ok(1));
    }

    #[test]
    fn includes_that_fan_out_stop_at_the_file_limit() {
        // f0 includes f1 eight times, f1 includes f2 eight times, ... f9: 8^9 reads.
        let dir = scratch("fanout");
        for i in 0..9 {
            write(&dir.join(format!("f{i}.policy")), &format!("include f{}.policy\n", i + 1).repeat(8));
        }
        write(&dir.join("f9.policy"), "allow * / any\n");
        let errors = file_errors(&dir.join("f0.policy"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert!(text.contains(".policy:") && text.contains(":9: more than 4096 policy files read"), "{text}");
        assert!(!errors[0].io);
    }

    #[test]
    fn too_many_statements_in_total_are_an_error_at_the_first_one_too_many() {
        let errors = within("a policy of too many statements", || {
            let mut builder = PolicyBuilder::new();
            builder.add_statement(&"group g any\n".repeat(MAX_STATEMENTS), "big.policy", 1);
            builder.add_statement("allow * / any\nallow * /x group=h", "inline", 7);
            builder.build().err().expect("too many statements are an error")
        });
        assert_eq!(texts(&errors), vec!["inline:7:1: more than 1000000 statements in total"]);
    }

    #[test]
    fn files_over_the_size_limits_are_errors() {
        let dir = scratch("size");
        // Sparse, so the test writes nothing: the size alone refuses it.
        let big = dir.join("big.policy");
        std::fs::File::create(&big).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        let want = format!("{0}: policy file {0} is larger than 16 MiB", big.display());
        assert_eq!(texts(&file_errors(&big)), vec![want]);
        let main = write(&dir.join("main.policy"), "allow * / any\n  include big.policy\n");
        let want = format!("{}:2:11: policy file {} is larger than 16 MiB", main.display(), big.display());
        assert_eq!(texts(&file_errors(&main)), vec![want]);

        // Five includes of one 15 MiB file of comments go over 64 MiB in all.
        let mut comments = "# a comment line of 32 bytes ..\n".repeat(15 << 15);
        comments.push_str("allow * /x any\n");
        write(&dir.join("comments.policy"), &comments);
        let main = write(&dir.join("main.policy"), &"include comments.policy\n".repeat(5));
        let want = format!(
            "{}:5:9: policy file {} takes the policy files over 64 MiB in total",
            main.display(),
            dir.join("comments.policy").display()
        );
        assert_eq!(texts(&file_errors(&main)), vec![want]);
    }

    #[test]
    fn a_byte_that_is_not_utf8_is_reported_at_its_line_and_column() {
        let dir = scratch("utf8");
        let path = dir.join("latin1.policy");
        std::fs::write(&path, b"allow * /a any\n\nall\xc3\xa9\xff * /b any\n").unwrap();
        let want = format!("{}:3:5: byte 0xFF is not UTF-8 (a policy file is UTF-8 text)", path.display());
        assert_eq!(texts(&file_errors(&path)), vec![want]);
        std::fs::write(&path, b"\xe9").unwrap();
        assert!(texts(&file_errors(&path))[0].contains("latin1.policy:1:1: byte 0xE9"));
    }

    #[test]
    fn deep_includes_and_loops_are_told_apart() {
        let dir = scratch("depth");
        for i in 0..20 {
            write(&dir.join(format!("d{i}.policy")), &format!("include d{}.policy\nallow * / any\n", i + 1));
        }
        write(&dir.join("d20.policy"), "allow * / any\n");
        let errors = texts(&file_errors(&dir.join("d0.policy")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("d15.policy:1:9: `include") && errors[0].contains("deeper than 16"));
        write(&dir.join("d3.policy"), "include d1.policy\n");
        let errors = texts(&file_errors(&dir.join("d0.policy")));
        assert!(errors[0].contains("d3.policy:1:9: `include") && errors[0].ends_with("makes a loop"));
    }

    #[test]
    fn errors_stop_being_collected_after_the_limit() {
        let errors = within("a policy of many errors", || {
            let mut builder = PolicyBuilder::new();
            builder.add_statement(&"frob\n".repeat(5000), "bad.policy", 1);
            builder.add_statement(&"\0".repeat(1 << 20), "nul.policy", 1);
            builder.build().err().unwrap()
        });
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(
            errors[MAX_ERRORS].to_string(),
            "bad.policy:1001:1: more than 1000 errors; the policy is not read further"
        );
    }

    #[test]
    fn positions_are_the_same_in_plain_and_quoted_tokens() {
        let errors = |text: &str| -> Vec<String> {
            let mut builder = PolicyBuilder::new();
            builder.add_statement(text, "p", 1);
            texts(&builder.build().err().expect("an error"))
        };
        let whole = "`*` and `{ATTR}` must be whole segments, not part of `b*c`";
        assert_eq!(errors("allow * /a/b*c any"), vec![format!("p:1:12: {whole}")]);
        assert_eq!(errors("allow * \"/a/b*c\" any"), vec![format!("p:1:13: {whole}")]);
        assert_eq!(errors("allow * /a//b any"), vec!["p:1:11: empty path segment (`//`)"]);
        assert_eq!(
            errors("allow * /\u{e4}/x//y any"),
            vec!["p:1:13: empty path segment (`//`)"],
            "columns count characters, not bytes"
        );
        assert_eq!(
            errors("allow * / \"subject.CN=x\""),
            vec!["p:1:11: expected `any`, `group=NAME` or `ATTR=VALUE`, not `subject.CN=x`"]
        );
        assert_eq!(errors("allow * / group=a/b"), vec!["p:1:17: bad group name `a/b`"]);
        assert_eq!(errors("allow * / san.dns=*."), vec!["p:1:19: `*.` must be followed by a domain"]);
        let policy = compile_text("allow * /a san.dns=\\*.example.org\nallow * /b san.dns=*.example.org\n");
        assert_eq!(policy.rule_count(), 2);
    }

    fn compile_text(text: &str) -> Policy {
        let mut builder = PolicyBuilder::new();
        builder.add_statement(text, "p", 1);
        builder.build().unwrap_or_else(|e| panic!("{:?}", texts(&e)))
    }

    #[test]
    fn a_long_line_of_backslashes_is_lexed_in_linear_time() {
        let errors = within("a line of backslashes", || {
            let mut builder = PolicyBuilder::new();
            builder.add_statement(&format!("allow * / subject.CN={}", "\\a".repeat(1 << 20)), "p", 1);
            builder.add_statement("allow * / bogus", "p", 2);
            builder.build().err().unwrap()
        });
        assert_eq!(texts(&errors), vec!["p:2:11: expected `any`, `group=NAME` or `ATTR=VALUE`, not `bogus`"]);
    }
}
