//! A lexical look at `.opt` text, without parsing: the characters that are code (not comments
//! or strings), the words they spell, and where the top-level items of a file begin. Cheap
//! enough to run over the whole standard library in a fraction of a millisecond.
//!
//! `build.rs` includes this file to index the standard library's items, so it uses nothing but
//! `std`.

use std::ops::Range;

/// The bytes of `text` outside comments and string literals, with their offsets. A string's
/// quotes are code, what they enclose is not; so is the newline that ends a comment (or an
/// unclosed string). Everything the scanner looks for is ASCII, so bytes will do.
pub fn code(text: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let bytes = text.as_bytes();
    let mut pos = 0;
    // Inside a string that opened with this quote.
    let mut quote: Option<u8> = None;
    std::iter::from_fn(move || {
        loop {
            let &b = bytes.get(pos)?;
            pos += 1;
            match (quote, b) {
                (_, b'\n') => {
                    quote = None;
                    return Some((pos - 1, b));
                }
                (Some(q), _) if b == q => {
                    quote = None;
                    return Some((pos - 1, b));
                }
                (Some(_), b'\\') => pos += 1,
                (Some(_), _) => {}
                (None, b'#') => pos += bytes[pos..].iter().position(|&c| c == b'\n').unwrap_or(bytes.len() - pos),
                (None, b'"' | b'\'') => {
                    quote = Some(b);
                    return Some((pos - 1, b));
                }
                (None, _) => return Some((pos - 1, b)),
            }
        }
    })
}

/// A piece of code: a word (a run of letters, digits and `_` not split by a comment or a
/// string; it may be a number) or any other byte.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    Word(usize, usize),
    Byte(usize, u8),
}

fn tokens(text: &str) -> impl Iterator<Item = Token> + '_ {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    // A word never holds a comment or a quote, so it ends where the text stops spelling it.
    let mut word_end = 0;
    code(text).filter_map(move |(i, b)| {
        if i < word_end {
            None
        } else if is_word(b) {
            word_end = bytes[i..].iter().position(|&c| !is_word(c)).map_or(bytes.len(), |n| i + n);
            Some(Token::Word(i, word_end))
        } else {
            Some(Token::Byte(i, b))
        }
    })
}

/// The names (and keywords) in `text`'s code, with their byte ranges.
pub fn words(text: &str) -> impl Iterator<Item = &str> + '_ {
    tokens(text).filter_map(|t| match t {
        Token::Word(start, end) if !text.as_bytes()[start].is_ascii_digit() => Some(&text[start..end]),
        _ => None,
    })
}

/// A top-level item of a file, found lexically: its name and its text, from its keyword to
/// the end of its last token (the comments after it, which document the next item, are left
/// out).
#[derive(Clone, Debug, PartialEq)]
pub struct ItemText {
    pub name: String,
    pub range: Range<usize>,
}

/// The top-level items of `text`: each starts with `def`, `transform`, `schedule`, `builtin`
/// or `let` as the first word of a line outside any brackets, and is named by the word after
/// it. Text before the first item (comments, say) belongs to none.
pub fn items(text: &str) -> Vec<ItemText> {
    const KEYWORDS: [&str; 5] = ["def", "transform", "schedule", "builtin", "let"];
    let mut items: Vec<ItemText> = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    // Set after an item's keyword: the next token, if a word, is its name.
    let mut naming = false;
    // Where the last token seen ends.
    let mut code_end = 0;
    for token in tokens(text) {
        match token {
            Token::Word(start, end) => {
                let word = &text[start..end];
                if naming {
                    if let Some(item) = items.last_mut() {
                        item.name = word.to_string();
                    }
                    naming = false;
                } else if depth == 0 && line_start && KEYWORDS.contains(&word) {
                    if let Some(item) = items.last_mut() {
                        item.range.end = code_end;
                    }
                    items.push(ItemText { name: String::new(), range: start..text.len() });
                    naming = true;
                }
                line_start = false;
                code_end = end;
            }
            Token::Byte(_, b' ' | b'\t' | b'\r') => {}
            Token::Byte(_, b'\n') => line_start = true,
            Token::Byte(offset, b) => {
                code_end = offset + 1;
                match b {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                line_start = false;
                naming = false;
            }
        }
    }
    if let Some(item) = items.last_mut() {
        item.range.end = code_end;
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_skips_comments_and_strings_but_keeps_line_ends() {
        let text = "a # b (\n\"c)\" 'd' e";
        let kept: Vec<u8> = code(text).map(|(_, b)| b).collect();
        assert_eq!(kept, b"a \n\"\" '' e");
    }

    #[test]
    fn words_are_names_outside_comments_and_strings() {
        let text = "let x1 = f(y, \"z\") # w\n2.5e3 + _q\"s\"r";
        let found: Vec<&str> = words(text).collect();
        assert_eq!(found, ["let", "x1", "f", "y", "_q", "r"]);
    }

    #[test]
    fn items_start_at_keywords_that_begin_a_line_outside_brackets() {
        let text = "# doc\ndef f(x: float) = x\n\n# g's doc\ntransform g() {\n  def = 1\n}\nschedule h(\n  let: int) = 1\n";
        let found = items(text);
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["f", "g", "h"]);
        assert_eq!(&text[found[0].range.clone()], "def f(x: float) = x");
        assert_eq!(&text[found[1].range.clone()], "transform g() {\n  def = 1\n}");
        assert_eq!(&text[found[2].range.clone()], "schedule h(\n  let: int) = 1");
    }

    #[test]
    fn an_item_ends_with_its_last_token_even_a_string() {
        let text = "def f() = \"a # b\"  # f's comment\n# g's doc\ndef g() = 1";
        let ranges: Vec<&str> = items(text).iter().map(|i| &text[i.range.clone()]).collect();
        assert_eq!(ranges, ["def f() = \"a # b\"", "def g() = 1"]);
    }
}
