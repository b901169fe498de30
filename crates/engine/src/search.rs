//! Searching the history as one types: what a person typed becomes the words the store looks
//! for, and each hit gets a snippet of its story around the first word found.

/// The words in `text`: runs of letters and digits, lower-cased. Punctuation and spaces only
/// separate them (so "beach, sunset" and "beach sunset" search alike).
pub fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// `text` lower-cased with its accents taken off ("Crème" → "creme"), as the history is
/// searched: what a person types without accents finds what was written with them.
pub fn fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Characters of story shown before the first word found.
const BEFORE: usize = 40;
/// Characters of story shown in all.
const LENGTH: usize = 160;

/// A line of `story` around the first of `words` that starts a word in it (the start of the
/// story when none does: the match was in the file name, or folded accents), cut at spaces,
/// with `…` where it was cut.
pub fn snippet(story: &str, words: &[String]) -> String {
    let chars: Vec<char> = story.chars().collect();
    let folded: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let found = (0..folded.len())
        .filter(|&at| at == 0 || !folded[at - 1].is_alphanumeric())
        .find(|&at| {
            words.iter().any(|word| {
                let mut word_chars = word.chars();
                let length = word.chars().count();
                at + length <= folded.len()
                    && folded[at..at + length]
                        .iter()
                        .all(|c| word_chars.next() == Some(*c))
            })
        })
        .unwrap_or(0);
    let mut start = found.saturating_sub(BEFORE);
    while start > 0 && start < found && !chars[start - 1].is_whitespace() {
        start += 1;
    }
    let mut end = (start + LENGTH).min(chars.len());
    if end < chars.len() {
        let cut = (start..end).rev().find(|&at| chars[at].is_whitespace());
        if let Some(cut) = cut.filter(|&cut| cut > found) {
            end = cut;
        }
    }
    let body: String = chars[start..end].iter().collect();
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut line = String::new();
    if start > 0 {
        line.push('…');
    }
    line.push_str(&body);
    if end < chars.len() {
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letter_and_digit_runs_lower_cased_once_each() {
        assert_eq!(
            words("  Beach, SUNSET—beach 4K! Crème  "),
            vec!["beach", "sunset", "4k", "crème"]
        );
        assert!(words(" ,.; ").is_empty());
    }

    #[test]
    fn snippets_start_near_the_first_word_found_and_say_where_they_were_cut() {
        let story = format!(
            "{} The camera finds a lighthouse at dusk. {}",
            "Waves roll in. ".repeat(10),
            "Gulls circle overhead. ".repeat(10)
        );
        let line = snippet(&story, &words("LIGHTHOUSE"));
        assert!(line.starts_with('…'), "{line}");
        assert!(line.ends_with('…'), "{line}");
        assert!(line.contains("a lighthouse at dusk"), "{line}");
        assert!(line.chars().count() <= LENGTH + 2, "{line}");
        // Cut at spaces: no word is cut in two.
        let inner = line.trim_matches('…');
        for word in inner.split(' ') {
            assert!(
                story.contains(&format!(" {word}")) || story.starts_with(word),
                "{word}"
            );
        }
        // A word inside another word is not a match: "house" is not found in "lighthouse".
        assert!(snippet(&story, &words("house")).starts_with("Waves roll in."));
        // A short story is whole, with no marks.
        assert_eq!(
            snippet("A red kite.\nIt flies.", &words("kite")),
            "A red kite. It flies."
        );
    }
}
