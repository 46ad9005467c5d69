//! One matcher for the wildcard patterns sultana reads from untrusted files
//! (`.gitattributes` in upstream trees, osstest allow files). Patterns are
//! compiled to tokens and matched by dynamic programming: time is
//! proportional to pattern × text, where backtracking is exponential on
//! patterns like `*a*a*a*a*b` (found by fuzzing).

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Byte(u8),
    /// Any one byte not in `stops`.
    One {
        stops: &'static [u8],
    },
    /// One byte of the set.
    Set(Box<[bool; 256]>),
    /// Any run of bytes not in `stops` (possibly empty).
    Many {
        stops: &'static [u8],
    },
    /// git's `**/`: nothing, or any run ending in `/`.
    Folders,
}

pub fn matches(tokens: &[Token], text: &[u8]) -> bool {
    let len = text.len();
    // `next[t]`: tokens after the current one match `text[t..]`.
    let mut next = vec![false; len + 1];
    next[len] = true;
    let mut current = vec![false; len + 1];
    for token in tokens.iter().rev() {
        match token {
            Token::Many { stops } => {
                current[len] = next[len];
                for t in (0..len).rev() {
                    current[t] = next[t] || (!stops.contains(&text[t]) && current[t + 1]);
                }
            }
            Token::Folders => {
                // `through[t]`: some `/` at or after `t` is followed by a match.
                let mut through = false;
                current[len] = next[len];
                for t in (0..len).rev() {
                    through = through || (text[t] == b'/' && next[t + 1]);
                    current[t] = next[t] || through;
                }
            }
            single => {
                current[len] = false;
                for t in 0..len {
                    let c = text[t];
                    let ok = match single {
                        Token::Byte(b) => c == *b,
                        Token::One { stops } => !stops.contains(&c),
                        Token::Set(set) => set[c as usize],
                        Token::Many { .. } | Token::Folders => unreachable!("handled above"),
                    };
                    current[t] = ok && next[t + 1];
                }
            }
        }
        std::mem::swap(&mut next, &mut current);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_stop_where_told() {
        let star = |stops| Token::Many { stops };
        let tokens = [Token::Byte(b'a'), star(b"/"), Token::Byte(b'c')];
        assert!(matches(&tokens, b"abbc"));
        assert!(matches(&tokens, b"ac"));
        assert!(!matches(&tokens, b"ab/c"));
        let folders = [Token::Folders, Token::Byte(b'x')];
        assert!(matches(&folders, b"x"));
        assert!(matches(&folders, b"a/b/x"));
        assert!(!matches(&folders, b"ax"));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        // Backtracking takes about 2^40 steps here.
        let mut tokens = Vec::new();
        for _ in 0..40 {
            tokens.push(Token::Many { stops: b"" });
            tokens.push(Token::Byte(b'a'));
        }
        tokens.push(Token::Byte(b'b'));
        assert!(!matches(&tokens, &[b'a'; 200]));
    }
}
