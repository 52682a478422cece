//! Splits policy text into statements and tokens, keeping the line and
//! column of every character so that every error can point at it.
//!
//! One statement per line; a line ending in `\` continues on the next.
//! `#` at the start of a token begins a comment.  Double quotes group
//! characters (spaces included) into a token; `\"`, `\\` and `\*` escape.
//! Any other `\x` is kept as written, for the values (RFC 4514 names) that
//! have escapes of their own.

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

/// Splits `text` into statements; `first_line` is the number of its first
/// line (1 for a file, the directive's line for an inline statement).
#[cfg(test)]
pub fn lex(text: &str, first_line: u32) -> (Vec<Statement>, Vec<LexError>) {
    let mut statements = Vec::new();
    let errors = lex_each(text, first_line, |s| statements.push(s));
    (statements, errors)
}

/// Splits `text` as [`lex`] does, but hands each statement to `on_statement` as soon as it
/// ends, so a large file is never held as tokens all at once.
pub fn lex_each(text: &str, first_line: u32, mut on_statement: impl FnMut(Statement)) -> Vec<LexError> {
    let mut errors = Vec::new();
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
                errors.push((ql, qc, "unterminated quote".to_string()));
            }
            finish_token(&mut current, &mut tokens);
            if !tokens.is_empty() {
                on_statement(Statement { tokens: std::mem::take(&mut tokens) });
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
            // A `\` before the end of the line continues the statement.
            let rest = &text[offset + 1..];
            let rest_of_line = &rest[..rest.find('\n').unwrap_or(rest.len())];
            if in_quote.is_none() && rest_of_line.chars().all(|n| n == ' ' || n == '\t' || n == '\r') {
                finish_token(&mut current, &mut tokens);
                while chars.next_if(|&(_, n)| n != '\n').is_some() {}
                chars.next();
                line += 1;
                col = 0;
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
            errors.push((line, col, format!("control character U+{:04X}", c as u32)));
            continue;
        }
        let token = current.get_or_insert_with(|| Token { chars: Vec::with_capacity(16), line, col });
        token.chars.push(LChar { c, quoted: in_quote.is_some(), escaped: false, line, col });
    }
    if let Some((ql, qc)) = in_quote {
        errors.push((ql, qc, "unterminated quote".to_string()));
    }
    finish_token(&mut current, &mut tokens);
    if !tokens.is_empty() {
        on_statement(Statement { tokens });
    }
    errors
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
