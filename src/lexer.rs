//! Splits policy text into statements and tokens, keeping the line and
//! column of every character so that every error can point at it.
//!
//! One statement per line; a line ending in `\` continues on the next.
//! `#` at the start of a token begins a comment.  Double quotes group
//! characters (spaces included) into a token; `\"`, `\\` and `\*` escape.
//! Any other `\x` is kept as written, for the values (RFC 4514 names) that
//! have escapes of their own.

use std::ops::ControlFlow;

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
    pub line: u32,
    pub col: u32,
}

impl Token {
    /// The token's text with quotes and escapes removed.
    pub fn text(&self) -> String {
        self.chars.iter().map(|c| c.c).collect()
    }
}

/// The tokens of one logical line.
#[derive(Debug, Clone)]
pub struct Statement {
    pub tokens: Vec<Token>,
}

/// A lexing error: (line, col, message).
pub type LexError = (u32, u32, String);

/// What the lexer hands on, in the order it finds them.
#[derive(Debug)]
pub enum Lexed {
    Statement(Statement),
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
            Lexed::Statement(s) => statements.push(s),
            Lexed::Error(e) => errors.push(e),
        }
        ControlFlow::Continue(())
    });
    (statements, errors)
}

/// Splits `text` as [`lex`] does, but hands each statement to `on` as soon as it ends, so a
/// large file is never held as tokens all at once, and each error as it is found.  `on`
/// returns `Break` to stop lexing (the builder does once a limit is reached), and so does
/// this function then.
pub fn lex_each(
    text: &str,
    first_line: u32,
    mut on: impl FnMut(Lexed) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut current: Option<Token> = None;
    let mut in_quote: Option<(u32, u32)> = None;
    let mut in_comment = false;

    let (mut line, mut col) = (first_line, 0u32);
    let mut chars = text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        col += 1;
        let here = (line, col);
        if c == '\n' {
            if let Some((ql, qc)) = in_quote.take() {
                on(Lexed::Error((ql, qc, "unterminated quote".to_string())))?;
            }
            finish_token(&mut current, &mut tokens);
            if !tokens.is_empty() {
                on(Lexed::Statement(Statement { tokens: std::mem::take(&mut tokens) }))?;
            }
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
                && text[offset + 1..]
                    .chars()
                    .take_while(|&n| n != '\n')
                    .all(|n| n == ' ' || n == '\t' || n == '\r');
            if continues {
                finish_token(&mut current, &mut tokens);
                while chars.next_if(|&(_, n)| n != '\n').is_some() {}
                // A `\` on the text's last line continues onto no line: the
                // count stays (a caller's line may be u32::MAX).
                if chars.next().is_some() {
                    line += 1;
                    col = 0;
                }
                continue;
            }
            let token = current.get_or_insert_with(|| Token { chars: Vec::new(), line, col });
            match chars.peek().map(|&(_, n)| n) {
                Some(n @ ('"' | '\\' | '*')) => {
                    token.chars.push(LChar { c: n, quoted: in_quote.is_some(), escaped: true, line, col });
                    col += 1;
                    chars.next();
                }
                _ => token.chars.push(LChar { c, quoted: in_quote.is_some(), escaped: false, line, col }),
            }
            continue;
        }
        if c == '"' {
            current.get_or_insert_with(|| Token { chars: Vec::new(), line, col });
            in_quote = match in_quote {
                Some(_) => None,
                None => Some(here),
            };
            continue;
        }
        if in_quote.is_none() && (c == ' ' || c == '\t' || c == '\r') {
            finish_token(&mut current, &mut tokens);
            continue;
        }
        if in_quote.is_none() && c == '#' && current.is_none() {
            in_comment = true;
            continue;
        }
        if c.is_control() && c != '\t' {
            on(Lexed::Error((line, col, format!("control character U+{:04X}", c as u32))))?;
            continue;
        }
        let token = current.get_or_insert_with(|| Token { chars: Vec::with_capacity(16), line, col });
        token.chars.push(LChar { c, quoted: in_quote.is_some(), escaped: false, line, col });
    }
    if let Some((ql, qc)) = in_quote {
        on(Lexed::Error((ql, qc, "unterminated quote".to_string())))?;
    }
    finish_token(&mut current, &mut tokens);
    if !tokens.is_empty() {
        on(Lexed::Statement(Statement { tokens }))?;
    }
    ControlFlow::Continue(())
}

fn finish_token(current: &mut Option<Token>, tokens: &mut Vec<Token>) {
    if let Some(token) = current.take() {
        tokens.push(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<String>> {
        let (statements, errors) = lex(text, 1);
        assert!(errors.is_empty(), "{errors:?}");
        statements.iter().map(|s| s.tokens.iter().map(Token::text).collect()).collect()
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
    fn unterminated_quote_is_an_error() {
        let (_, errors) = lex("allow GET /x subject.O=\"Example\n", 3);
        assert_eq!(errors, vec![(3, 24, "unterminated quote".to_string())]);
    }
}
