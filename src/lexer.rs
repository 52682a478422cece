//! Splits policy text into statements and tokens, keeping the line and
//! column of every character so that every error can point at it.
//!
//! One statement per line; a line ending in `\` continues on the next.
//! `#` at the start of a token begins a comment.  Double quotes group
//! characters (spaces included) into a token; `\"`, `\\` and `\*` escape.
//! Any other `\x` is kept as written, for the values (RFC 4514 names) that
//! have escapes of their own.

use std::borrow::Cow;
use std::ops::{ControlFlow, Range};

/// One character of a token, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct LChar {
    pub c: char,
    /// Written inside double quotes.
    pub quoted: bool,
    /// Written as `\c`: never a wildcard or separator.
    pub escaped: bool,
    pub line: u32,
    pub col: u32,
}

/// A whitespace-separated word of a statement.
#[derive(Debug, Clone)]
pub struct Token {
    pub chars: Vec<LChar>,
    /// The characters' `c`s, kept as the lexer goes: most of a compile asks
    /// for text, and collecting it per question cost more than the lexing.
    text: String,
    pub line: u32,
    pub col: u32,
}

impl Token {
    fn new(line: u32, col: u32) -> Token {
        Token { chars: Vec::new(), text: String::new(), line, col }
    }

    fn push(&mut self, c: LChar) {
        self.chars.push(c);
        self.text.push(c.c);
    }

    /// The token's text with quotes and escapes removed.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of `chars[range]`, borrowed when every character is one byte.
    pub fn text_of(&self, range: Range<usize>) -> Cow<'_, str> {
        if self.text.len() == self.chars.len() {
            Cow::Borrowed(&self.text[range])
        } else {
            Cow::Owned(self.chars[range].iter().map(|c| c.c).collect())
        }
    }
}

/// The tokens of one logical line.
#[derive(Debug, Clone)]
pub struct Statement {
    pub tokens: Vec<Token>,
}

/// A lexing error: (line, col, message).
pub type LexError = (u32, u32, String);

/// What the lexer hands on, in the order it finds them.  A statement is
/// lent: its tokens' buffers are used again for the next one.
#[derive(Debug)]
pub enum Lexed<'a> {
    Statement(&'a Statement),
    Error(LexError),
}

/// Splits `text` into statements; `first_line` is the number of its first
/// line (1 for a file, the directive's line for an inline statement).
#[cfg(test)]
pub fn lex(text: &str, first_line: u32) -> (Vec<Statement>, Vec<LexError>) {
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    let _ = lex_each(text, first_line, |item| {
        match item {
            Lexed::Statement(s) => statements.push(s.clone()),
            Lexed::Error(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    (statements, errors)
}

/// The tokens of the statement being read, and the buffers of earlier
/// tokens to fill again.
struct Tokens {
    statement: Statement,
    current: Option<Token>,
    spare: Vec<Token>,
}

impl Tokens {
    /// The token being read, begun at (line, col) if there is none.
    fn current(&mut self, line: u32, col: u32) -> &mut Token {
        let spare = &mut self.spare;
        self.current.get_or_insert_with(|| match spare.pop() {
            Some(mut token) => {
                token.line = line;
                token.col = col;
                token
            }
            None => Token::new(line, col),
        })
    }

    fn finish_token(&mut self) {
        if let Some(token) = self.current.take() {
            self.statement.tokens.push(token);
        }
    }

    /// Ends the statement: hands it to `on` if it has any token.
    fn finish_statement(&mut self, on: &mut impl FnMut(Lexed) -> ControlFlow<()>) -> ControlFlow<()> {
        self.finish_token();
        if self.statement.tokens.is_empty() {
            return ControlFlow::Continue(());
        }
        let flow = on(Lexed::Statement(&self.statement));
        for mut token in self.statement.tokens.drain(..) {
            token.chars.clear();
            token.text.clear();
            self.spare.push(token);
        }
        flow
    }
}

/// Which bytes are a character of a token and nothing else, outside quotes
/// (`PLAIN`) and inside (`PLAIN_QUOTED`): printable ASCII but for `"` and
/// `\`, and inside quotes the space too.
const PLAIN: u8 = 1;
const PLAIN_QUOTED: u8 = 2;
const PLAIN_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = b'!';
    while b <= b'~' {
        if b != b'"' && b != b'\\' {
            table[b as usize] = PLAIN | PLAIN_QUOTED;
        }
        b += 1;
    }
    table[b' ' as usize] = PLAIN_QUOTED;
    table
};

/// Splits `text` as [`lex`] does, but hands each statement to `on` as soon as it ends, so a
/// large file is never held as tokens all at once, and each error as it is found.  `on`
/// returns `Break` to stop lexing (the builder does once a limit is reached), and so does
/// this function then.
pub fn lex_each(
    text: &str,
    first_line: u32,
    mut on: impl FnMut(Lexed) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut tokens = Tokens { statement: Statement { tokens: Vec::new() }, current: None, spare: Vec::new() };
    let mut in_quote: Option<(u32, u32)> = None;
    let mut in_comment = false;

    let bytes = text.as_bytes();
    let (mut line, mut col) = (first_line, 0u32);
    let mut offset = 0;
    while offset < bytes.len() {
        // The characters that are only ever part of a token, one byte each, go
        // in a run: most of a policy is these.
        if let Some(token) = tokens.current.as_mut().filter(|_| !in_comment) {
            let quoted = in_quote.is_some();
            let class = if quoted { PLAIN_QUOTED } else { PLAIN };
            let run = bytes[offset..]
                .iter()
                .position(|&b| PLAIN_BYTES[usize::from(b)] & class == 0)
                .unwrap_or(bytes.len() - offset);
            if run > 0 {
                let first_col = col + 1;
                // Of a known length, so that the list grows once and is filled in a plain loop.
                token.chars.extend(bytes[offset..offset + run].iter().enumerate().map(|(k, &b)| LChar {
                    c: char::from(b),
                    quoted,
                    escaped: false,
                    line,
                    col: first_col + k as u32,
                }));
                token.text.push_str(&text[offset..offset + run]);
                offset += run;
                col += run as u32;
            }
            if offset == bytes.len() {
                break;
            }
        }
        let c = match text[offset..].chars().next() {
            Some(c) => c,
            None => break,
        };
        offset += c.len_utf8();
        col += 1;
        let here = (line, col);
        if c == '\n' {
            if let Some((ql, qc)) = in_quote.take() {
                on(Lexed::Error((ql, qc, "unterminated quote".to_string())))?;
            }
            tokens.finish_statement(&mut on)?;
            in_comment = false;
            line += 1;
            col = 0;
            continue;
        }
        if in_comment {
            continue;
        }
        if c == '\\' {
            // A `\` before the end of the line continues the statement.  Only the blanks
            // after it are looked at, never the whole rest of the line: a line of many
            // backslashes must stay linear, not quadratic.
            let continues = in_quote.is_none()
                && text[offset..]
                    .chars()
                    .take_while(|&n| n != '\n')
                    .all(|n| n == ' ' || n == '\t' || n == '\r');
            if continues {
                tokens.finish_token();
                offset = match memchr::memchr(b'\n', &bytes[offset..]) {
                    // A `\` on the text's last line continues onto no line: the
                    // count stays (a caller's line may be u32::MAX).
                    None => bytes.len(),
                    Some(n) => {
                        line += 1;
                        col = 0;
                        offset + n + 1
                    }
                };
                continue;
            }
            let quoted = in_quote.is_some();
            let token = tokens.current(line, col);
            match bytes.get(offset) {
                Some(&n @ (b'"' | b'\\' | b'*')) => {
                    token.push(LChar { c: char::from(n), quoted, escaped: true, line, col });
                    col += 1;
                    offset += 1;
                }
                _ => token.push(LChar { c, quoted, escaped: false, line, col }),
            }
            continue;
        }
        if c == '"' {
            tokens.current(line, col);
            in_quote = match in_quote {
                Some(_) => None,
                None => Some(here),
            };
            continue;
        }
        if in_quote.is_none() && (c == ' ' || c == '\t' || c == '\r') {
            tokens.finish_token();
            continue;
        }
        if in_quote.is_none() && c == '#' && tokens.current.is_none() {
            in_comment = true;
            continue;
        }
        if c.is_control() && c != '\t' {
            on(Lexed::Error((line, col, format!("control character U+{:04X}", c as u32))))?;
            continue;
        }
        let quoted = in_quote.is_some();
        tokens.current(line, col).push(LChar { c, quoted, escaped: false, line, col });
    }
    if let Some((ql, qc)) = in_quote {
        on(Lexed::Error((ql, qc, "unterminated quote".to_string())))?;
    }
    tokens.finish_statement(&mut on)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        let (statements, errors) = lex(text, 1);
        assert!(errors.is_empty(), "{errors:?}");
        statements.iter().map(|s| s.tokens.iter().map(|t| t.text().to_string()).collect()).collect()
    }

    #[test]
    fn quotes_escapes_comments_and_continuations() {
        assert_eq!(
            words("allow GET /a subject.O=\"Example Corp\" # comment\n\n# only\ndeny * \\\n  /b any\n"),
            vec![vec!["allow", "GET", "/a", "subject.O=Example Corp"], vec!["deny", "*", "/b", "any"],]
        );
        assert_eq!(words(r#"a x=\"q\" y=\\ z=\*"#), vec![vec!["a", "x=\"q\"", "y=\\", "z=*"]]);
        assert_eq!(
            words(r"a CN=x\,y serial=4F#not-a-comment"),
            vec![vec!["a", "CN=x\\,y", "serial=4F#not-a-comment"]]
        );
    }

    #[test]
    fn positions_survive_continuations() {
        let (statements, _) = lex("allow GET \\\n   /x any", 7);
        let path = &statements[0].tokens[2];
        assert_eq!((path.line, path.col), (8, 4));
    }

    #[test]
    fn text_and_positions_of_characters_past_ascii() {
        let (statements, errors) = lex("allow * /gr\u{fc}n/x subject.CN=\"J\u{fc}rgen \\\"\u{c4}\\\"\"#x", 1);
        assert!(errors.is_empty(), "{errors:?}");
        let tokens = &statements[0].tokens;
        assert_eq!(tokens[2].text(), "/gr\u{fc}n/x");
        assert_eq!(tokens[2].text_of(1..5), "gr\u{fc}n");
        let value = &tokens[3];
        assert_eq!(value.text(), "subject.CN=J\u{fc}rgen \"\u{c4}\"#x");
        assert_eq!(value.text_of(0..10), "subject.CN");
        let cols: Vec<u32> = value.chars.iter().map(|c| c.col).collect();
        assert_eq!(&cols[10..14], &[27, 29, 30, 31]);
        assert_eq!((value.chars[18].c, value.chars[18].escaped, value.chars[18].col), ('"', true, 36));
        assert!(value.chars[11..].iter().take(10).all(|c| c.quoted) && !value.chars[21].quoted);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let (_, errors) = lex("allow GET /x subject.O=\"Example\n", 3);
        assert_eq!(errors, vec![(3, 24, "unterminated quote".to_string())]);
    }
}
