//! The PDF export: A4 pages with margins, a "Stories" title, then per video a bold heading
//! with its file name, its source path in grey and the story's paragraphs, wrapped to the
//! page width; the page number at the foot of every page.
//!
//! The text is real text in embedded fonts, so it can be selected, searched and copied: DejaVu
//! Sans (regular and bold, shipped in `assets/fonts`), and for characters DejaVu lacks
//! (Chinese, Japanese, Korean) a font of this machine from a few well-known places, when one
//! is there. Lines are broken with the fonts' own advance widths. A character no font has is
//! drawn as the font's missing-glyph box and still carried as text (`/ActualText`), so
//! copying or extracting the text gives it back. Each font is embedded as a subset of the
//! glyphs used, so a document stays small.
//!
//! There is no shaping: each character is one glyph, which suits the Latin, Greek, Cyrillic
//! and CJK scripts but not scripts whose letters join (Arabic) or reorder (Devanagari).

use super::StoryDocument;
use crate::EngineError;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use subsetter::GlyphRemapper;

const DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Fonts that cover what DejaVu Sans does not (Chinese, Japanese, Korean), where systems
/// install them; tried in order, and only for characters DejaVu lacks.
#[cfg(target_os = "macos")]
pub(super) const FALLBACK_FONTS: &[&str] = &[
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
];
/// Fonts that cover what DejaVu Sans does not (Chinese, Japanese, Korean), where systems
/// install them; tried in order, and only for characters DejaVu lacks.
#[cfg(windows)]
pub(super) const FALLBACK_FONTS: &[&str] = &[
    r"C:\Windows\Fonts\msyh.ttc",
    r"C:\Windows\Fonts\YuGothM.ttc",
    r"C:\Windows\Fonts\malgun.ttf",
];
/// Fonts that cover what DejaVu Sans does not (Chinese, Japanese, Korean), where systems
/// install them; tried in order, and only for characters DejaVu lacks.
#[cfg(not(any(target_os = "macos", windows)))]
pub(super) const FALLBACK_FONTS: &[&str] = &[
    // Debian and Ubuntu (fonts-noto-cjk), Arch (noto-fonts-cjk), older Fedora.
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    // Debian and Ubuntu (fonts-droid-fallback).
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

/// The document's title, on its first page and in its properties.
const TITLE: &str = "Stories";

/// A4, in points.
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
/// 20 mm on the left, right and top; the foot leaves room for the page number.
const MARGIN: f32 = 56.69;
const MARGIN_BOTTOM: f32 = 68.0;
const FOOTER_BASELINE: f32 = 34.0;
const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

const TITLE_STYLE: TextStyle = TextStyle {
    weight: Weight::Bold,
    size: 22.0,
    leading: 30.0,
    gray: 0.0,
};
const HEADING_STYLE: TextStyle = TextStyle {
    weight: Weight::Bold,
    size: 14.0,
    leading: 19.0,
    gray: 0.0,
};
const SOURCE_STYLE: TextStyle = TextStyle {
    weight: Weight::Regular,
    size: 8.5,
    leading: 12.0,
    gray: 0.4,
};
const BODY_STYLE: TextStyle = TextStyle {
    weight: Weight::Regular,
    size: 11.0,
    leading: 15.5,
    gray: 0.0,
};
const FOOTER_STYLE: TextStyle = TextStyle {
    weight: Weight::Regular,
    size: 9.0,
    leading: 12.0,
    gray: 0.4,
};
const SPACE_AFTER_TITLE: f32 = 6.0;
const SPACE_BEFORE_HEADING: f32 = 18.0;
const SPACE_AFTER_SOURCE: f32 = 8.0;
const SPACE_BETWEEN_PARAGRAPHS: f32 = 7.0;

/// Where fonts sit in [`Typesetter::fonts`]: the two bundled ones, then the fallbacks found.
const REGULAR: usize = 0;
const BOLD: usize = 1;
const FIRST_FALLBACK: usize = 2;

/// Renders `stories` as a PDF, with the first fonts of `fallback_paths` that cover the
/// characters DejaVu Sans lacks.
pub(super) fn render(stories: &[StoryDocument], fallback_paths: &[&str]) -> crate::Result<Vec<u8>> {
    let regular = bundled_face(DEJAVU_SANS)?;
    let bold = bundled_face(DEJAVU_SANS_BOLD)?;
    let uncovered: BTreeSet<char> = document_chars(stories)
        .into_iter()
        .filter(|&c| {
            !c.is_control() && !is_invisible(c) && !has_glyph(&regular, c) && !has_glyph(&bold, c)
        })
        .collect();
    let mut fallbacks = if uncovered.is_empty() {
        Vec::new()
    } else {
        fallback_fonts(uncovered, fallback_paths)
    };
    // A fallback font that turns out not to embed (its subsetting fails) is dropped and the
    // document laid out again without it: its characters then go to the next font that has
    // them, or to the missing-glyph box.
    loop {
        match typeset(stories, &fallbacks) {
            Ok(pdf) => return Ok(pdf),
            Err(Failure::Fallback(index, why)) => {
                let dropped = fallbacks.remove(index);
                tracing::warn!(
                    path = %dropped.path,
                    %why,
                    "a font for characters DejaVu Sans lacks could not be embedded; left out"
                );
            }
            Err(Failure::Failed(error)) => return Err(error),
        }
    }
}

/// Why a layout could not be written.
enum Failure {
    /// The fallback font at this index (of those passed in) could not be embedded.
    Fallback(usize, String),
    /// Anything else.
    Failed(EngineError),
}

/// A font of this machine, read whole.
struct FallbackFont {
    path: String,
    data: Vec<u8>,
}

/// Reads the fonts at `paths`, in order, keeping those that cover some of `uncovered` not
/// covered by one kept before; stops once everything is covered. A font that is not there or
/// does not parse is passed over.
fn fallback_fonts(mut uncovered: BTreeSet<char>, paths: &[&str]) -> Vec<FallbackFont> {
    let mut found = Vec::new();
    for &path in paths {
        if uncovered.is_empty() {
            break;
        }
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        let covered: Vec<char> = match ttf_parser::Face::parse(&data, 0) {
            Ok(face) => uncovered
                .iter()
                .copied()
                .filter(|&c| has_glyph(&face, c))
                .collect(),
            Err(error) => {
                tracing::debug!(path, %error, "not a font that can be used");
                continue;
            }
        };
        if covered.is_empty() {
            continue;
        }
        for c in &covered {
            uncovered.remove(c);
        }
        found.push(FallbackFont {
            path: path.to_owned(),
            data,
        });
    }
    found
}

fn bundled_face(data: &'static [u8]) -> crate::Result<ttf_parser::Face<'static>> {
    ttf_parser::Face::parse(data, 0).map_err(|e| {
        EngineError::ExportFailed(format!("the PDF's bundled font does not parse: {e}"))
    })
}

fn has_glyph(face: &ttf_parser::Face<'_>, c: char) -> bool {
    face.glyph_index(c).is_some_and(|id| id.0 != 0)
}

/// Formatting characters with nothing to draw (joiners, variation selectors, the byte order
/// mark): left out where no font has a glyph for them, rather than drawn as boxes.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}' | '\u{E0100}'..='\u{E01EF}')
}

/// Where a line may break: white space, but not the no-break spaces.
fn is_break_space(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

/// Every character the document shows.
fn document_chars(stories: &[StoryDocument]) -> BTreeSet<char> {
    let mut chars: BTreeSet<char> = TITLE.chars().chain("Page of 0123456789".chars()).collect();
    for story in stories {
        chars.extend(story.file.chars());
        chars.extend(story.source.chars());
        for line in story.paragraphs.iter().flatten() {
            chars.extend(line.chars());
        }
    }
    chars
}

/// Lays out `stories` with the bundled fonts and `fallbacks`, and writes the PDF.
fn typeset(stories: &[StoryDocument], fallbacks: &[FallbackFont]) -> Result<Vec<u8>, Failure> {
    let mut fonts = vec![
        Font::new(
            bundled_face(DEJAVU_SANS).map_err(Failure::Failed)?,
            DEJAVU_SANS,
        ),
        Font::new(
            bundled_face(DEJAVU_SANS_BOLD).map_err(Failure::Failed)?,
            DEJAVU_SANS_BOLD,
        ),
    ];
    for (index, fallback) in fallbacks.iter().enumerate() {
        let face = ttf_parser::Face::parse(&fallback.data, 0)
            .map_err(|e| Failure::Fallback(index, e.to_string()))?;
        fonts.push(Font::new(face, &fallback.data));
    }
    let mut typesetter = Typesetter::new(fonts);
    typesetter.lay_out(stories);
    let document_id = document_id(stories);
    write_pdf(&typesetter.fonts, &typesetter.pages, &document_id)
}

/// The same stories give the same document identifier.
fn document_id(stories: &[StoryDocument]) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    for story in stories {
        for part in [&story.file, &story.source] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        for line in story.paragraphs.iter().flatten() {
            hasher.update(line.as_bytes());
            hasher.update(&[0]);
        }
        hasher.update(&[1]);
    }
    hasher.finalize().as_bytes()[..16].to_vec()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Weight {
    Regular,
    Bold,
}

/// How a kind of line is set: its font, size and line height (points), and its grey level
/// (0 black).
#[derive(Clone, Copy, Debug)]
struct TextStyle {
    weight: Weight,
    size: f32,
    leading: f32,
    gray: f32,
}

/// A font as the document uses it.
struct Font<'a> {
    face: ttf_parser::Face<'a>,
    data: &'a [u8],
    /// The glyphs used, renumbered from 0 as the subset numbers them; the new numbers are the
    /// character codes written in the page content.
    glyphs: GlyphRemapper,
    /// What each glyph used (by its new number) stands for, for copying and searching.
    to_unicode: BTreeMap<u16, char>,
    used: bool,
}

impl<'a> Font<'a> {
    fn new(face: ttf_parser::Face<'a>, data: &'a [u8]) -> Self {
        Font {
            face,
            data,
            glyphs: GlyphRemapper::new(),
            to_unicode: BTreeMap::new(),
            used: false,
        }
    }

    /// The advance of glyph `id`, in ems.
    fn advance(&self, id: u16) -> f32 {
        let units = self
            .face
            .glyph_hor_advance(ttf_parser::GlyphId(id))
            .unwrap_or(0);
        f32::from(units) / self.units_per_em()
    }

    fn units_per_em(&self) -> f32 {
        f32::from(self.face.units_per_em().max(1))
    }

    fn is_cff(&self) -> bool {
        self.face.tables().cff.is_some()
    }

    /// The PostScript name, reduced to what a PDF name may hold.
    fn postscript_name(&self) -> String {
        let name = self
            .face
            .names()
            .into_iter()
            .filter(|name| name.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|name| name.to_string())
            .unwrap_or_default();
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if name.is_empty() {
            "Font".to_owned()
        } else {
            name
        }
    }

    /// The font program to embed: the subset of the glyphs used, as TrueType, or as a bare
    /// CFF table for a font with PostScript outlines (as PDF wants those).
    fn program(&self) -> Result<FontProgram, String> {
        let subset = subsetter::subset(self.data, 0, &self.glyphs).map_err(|e| e.to_string())?;
        if !self.is_cff() {
            return Ok(FontProgram {
                bytes: subset,
                cff: false,
            });
        }
        let face = ttf_parser::RawFace::parse(&subset, 0).map_err(|e| e.to_string())?;
        let cff = face
            .table(ttf_parser::Tag::from_bytes(b"CFF "))
            .ok_or_else(|| "the subset has no CFF table".to_owned())?;
        Ok(FontProgram {
            bytes: cff.to_vec(),
            cff: true,
        })
    }
}

struct FontProgram {
    bytes: Vec<u8>,
    cff: bool,
}

/// The glyph a character is drawn with.
#[derive(Clone, Copy, Debug)]
struct Glyph {
    font: usize,
    id: u16,
    /// In ems.
    advance: f32,
    /// Whether the font has the character (else `id` is its missing-glyph box).
    found: bool,
}

/// Consecutive characters of a line drawn with one font.
#[derive(Debug)]
struct Piece {
    font: usize,
    /// The glyphs' new numbers (see [`Font::glyphs`]).
    codes: Vec<u16>,
    /// The characters, carried as `/ActualText` when the glyphs alone would not give them
    /// back (a missing-glyph box, a glyph another character already stands for).
    actual_text: Option<String>,
}

/// A line of text where it stands on its page.
#[derive(Debug)]
struct Line {
    x: f32,
    baseline: f32,
    /// In points; only the tests read it, to hold lines to the margins.
    #[cfg_attr(not(test), allow(dead_code))]
    width: f32,
    style: TextStyle,
    pieces: Vec<Piece>,
}

/// Lays text out in lines and pages.
struct Typesetter<'a> {
    fonts: Vec<Font<'a>>,
    glyph_cache: HashMap<(char, Weight), Glyph>,
    pages: Vec<Vec<Line>>,
    /// Where the next line's top goes on the last page (points from the page's foot).
    top: f32,
}

impl<'a> Typesetter<'a> {
    fn new(fonts: Vec<Font<'a>>) -> Self {
        Typesetter {
            fonts,
            glyph_cache: HashMap::new(),
            pages: vec![Vec::new()],
            top: PAGE_HEIGHT - MARGIN,
        }
    }

    fn lay_out(&mut self, stories: &[StoryDocument]) {
        self.place_wrapped(TITLE, TITLE_STYLE);
        self.space(SPACE_AFTER_TITLE);
        for story in stories {
            let heading = self.wrap(&story.file.replace('\t', " "), HEADING_STYLE);
            let source = self.wrap(&story.source.replace('\t', " "), SOURCE_STYLE);
            // A heading is kept with its source line and the story's first line.
            let first_line = if story.paragraphs.is_empty() {
                0.0
            } else {
                SPACE_AFTER_SOURCE + BODY_STYLE.leading
            };
            let together = SPACE_BEFORE_HEADING
                + heading.len() as f32 * HEADING_STYLE.leading
                + source.len() as f32 * SOURCE_STYLE.leading
                + first_line;
            self.ensure_room(together);
            self.space(SPACE_BEFORE_HEADING);
            for line in &heading {
                self.place(line, HEADING_STYLE);
            }
            for line in &source {
                self.place(line, SOURCE_STYLE);
            }
            self.space(SPACE_AFTER_SOURCE);
            for (index, paragraph) in story.paragraphs.iter().enumerate() {
                if index > 0 {
                    self.space(SPACE_BETWEEN_PARAGRAPHS);
                }
                for line in paragraph {
                    self.place_wrapped(line, BODY_STYLE);
                }
            }
        }
        self.footers();
    }

    /// `text` wrapped and placed, line after line.
    fn place_wrapped(&mut self, text: &str, style: TextStyle) {
        // A tab indents, as four spaces (fonts have no glyph for it).
        let text = text.replace('\t', "    ");
        for line in self.wrap(&text, style) {
            self.place(&line, style);
        }
    }

    /// "Page 3 of 7" centred at the foot of every page.
    fn footers(&mut self) {
        let count = self.pages.len();
        for index in 0..count {
            let text = format!("Page {} of {count}", index + 1);
            let width = self.width(&text, FOOTER_STYLE);
            let line = self.line_at(
                &text,
                FOOTER_STYLE,
                (PAGE_WIDTH - width) / 2.0,
                FOOTER_BASELINE,
            );
            self.pages[index].push(line);
        }
    }

    fn page_is_empty(&self) -> bool {
        self.pages.last().is_none_or(Vec::is_empty)
    }

    /// A new page unless `height` more fits on this one (or this one is still empty).
    fn ensure_room(&mut self, height: f32) {
        if self.top - height < MARGIN_BOTTOM && !self.page_is_empty() {
            self.pages.push(Vec::new());
            self.top = PAGE_HEIGHT - MARGIN;
        }
    }

    /// Vertical space, none at the top of a page.
    fn space(&mut self, height: f32) {
        if !self.page_is_empty() {
            self.top -= height;
        }
    }

    /// One line at the left margin, below the last.
    fn place(&mut self, text: &str, style: TextStyle) {
        self.ensure_room(style.leading);
        let line = self.line_at(text, style, MARGIN, self.top - style.size);
        self.top -= style.leading;
        if let Some(page) = self.pages.last_mut() {
            page.push(line);
        }
    }

    /// `text` as one line at (`x`, `baseline`), its glyphs counted into their fonts' subsets.
    fn line_at(&mut self, text: &str, style: TextStyle, x: f32, baseline: f32) -> Line {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut width = 0.0;
        for c in text.chars() {
            let glyph = self.glyph(c, style.weight);
            if !glyph.found && is_invisible(c) {
                continue;
            }
            width += glyph.advance * style.size;
            let font = &mut self.fonts[glyph.font];
            font.used = true;
            let code = font.glyphs.remap(glyph.id);
            // The first character a glyph draws is the one it gives back; any other, and the
            // missing-glyph box, are spelled out in `/ActualText`.
            let spelled = !glyph.found || *font.to_unicode.entry(code).or_insert(c) != c;
            let joins = pieces.last().is_some_and(|last| {
                last.font == glyph.font && last.actual_text.is_some() == spelled
            });
            if !joins {
                pieces.push(Piece {
                    font: glyph.font,
                    codes: Vec::new(),
                    actual_text: spelled.then(String::new),
                });
            }
            if let Some(piece) = pieces.last_mut() {
                piece.codes.push(code);
                if let Some(actual) = &mut piece.actual_text {
                    actual.push(c);
                }
            }
        }
        Line {
            x,
            baseline,
            width,
            style,
            pieces,
        }
    }

    /// The glyph for `c`: from the first font for `weight` that has it (bold text falls back to
    /// the regular face, then to the fallbacks), else the missing-glyph box.
    fn glyph(&mut self, c: char, weight: Weight) -> Glyph {
        if let Some(glyph) = self.glyph_cache.get(&(c, weight)) {
            return *glyph;
        }
        let primary = match weight {
            Weight::Regular => REGULAR,
            Weight::Bold => BOLD,
        };
        let chain = std::iter::once(primary)
            .chain((weight == Weight::Bold).then_some(REGULAR))
            .chain(FIRST_FALLBACK..self.fonts.len());
        let mut glyph = Glyph {
            font: primary,
            id: 0,
            advance: self.fonts[primary].advance(0),
            found: false,
        };
        for font in chain {
            if let Some(id) = self.fonts[font].face.glyph_index(c).filter(|id| id.0 != 0) {
                glyph = Glyph {
                    font,
                    id: id.0,
                    advance: self.fonts[font].advance(id.0),
                    found: true,
                };
                break;
            }
        }
        self.glyph_cache.insert((c, weight), glyph);
        glyph
    }

    /// The width of `text` set in `style`, in points.
    fn width(&mut self, text: &str, style: TextStyle) -> f32 {
        text.chars()
            .filter_map(|c| {
                let glyph = self.glyph(c, style.weight);
                (glyph.found || !is_invisible(c)).then_some(glyph.advance * style.size)
            })
            .sum()
    }

    /// `text` broken into lines no wider than the text column: at spaces where it can be, and
    /// within a word that is wider than the column on its own. Leading white space (an indent)
    /// is kept on the first line; spaces where a line breaks are dropped.
    fn wrap(&mut self, text: &str, style: TextStyle) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_width = 0.0;
        let mut gap = String::new();
        for (is_space, token) in tokens(text) {
            if is_space {
                if lines.is_empty() && line.is_empty() {
                    line_width += self.width(token, style);
                    line.push_str(token);
                } else {
                    gap.push_str(token);
                }
                continue;
            }
            let word_width = self.width(token, style);
            let gap_width = self.width(&gap, style);
            if line_width + gap_width + word_width <= TEXT_WIDTH {
                line.push_str(&gap);
                line.push_str(token);
                line_width += gap_width + word_width;
                gap.clear();
                continue;
            }
            gap.clear();
            if !line.trim().is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.clear();
            line_width = 0.0;
            if word_width <= TEXT_WIDTH {
                line.push_str(token);
                line_width = word_width;
                continue;
            }
            for c in token.chars() {
                let char_width = self.width(c.encode_utf8(&mut [0; 4]), style);
                if line_width + char_width > TEXT_WIDTH && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(c);
                line_width += char_width;
            }
        }
        if !line.trim().is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// `text` as alternating runs of break spaces and of everything else: (whether a space, the
/// run).
fn tokens(text: &str) -> Vec<(bool, &str)> {
    let mut tokens = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (at, c) in text.char_indices() {
        let space = is_break_space(c);
        if in_space.is_some_and(|was| was != space) {
            tokens.push((!space, &text[start..at]));
            start = at;
        }
        in_space = Some(space);
    }
    if let Some(space) = in_space {
        tokens.push((space, &text[start..]));
    }
    tokens
}

/// The resource name of font `index` on every page.
fn font_resource(index: usize) -> String {
    format!("F{index}")
}

/// Writes the laid out `pages` with the `fonts` they use.
fn write_pdf(
    fonts: &[Font<'_>],
    pages: &[Vec<Line>],
    document_id: &[u8],
) -> Result<Vec<u8>, Failure> {
    // Fonts are subset first, so that one that cannot be is known before anything is written.
    let mut programs = Vec::with_capacity(fonts.len());
    for (index, font) in fonts.iter().enumerate() {
        if !font.used {
            programs.push(None);
            continue;
        }
        match font.program() {
            Ok(program) => programs.push(Some(program)),
            Err(why) if index >= FIRST_FALLBACK => {
                return Err(Failure::Fallback(index - FIRST_FALLBACK, why))
            }
            Err(why) => {
                return Err(Failure::Failed(EngineError::ExportFailed(format!(
                    "the font {} could not be embedded in the PDF: {why}",
                    font.postscript_name()
                ))))
            }
        }
    }

    let mut next_id = Ref::new(1);
    let catalog_id = next_id.bump();
    let page_tree_id = next_id.bump();
    let info_id = next_id.bump();
    let font_ids: Vec<Option<Ref>> = programs
        .iter()
        .map(|program| program.as_ref().map(|_| next_id.bump()))
        .collect();
    let page_ids: Vec<(Ref, Ref)> = pages
        .iter()
        .map(|_| (next_id.bump(), next_id.bump()))
        .collect();
    let resource_names: Vec<String> = (0..fonts.len()).map(font_resource).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id)
        .pages(page_tree_id)
        .viewer_preferences()
        .display_doc_title(true);
    pdf.pages(page_tree_id)
        .kids(page_ids.iter().map(|(page_id, _)| *page_id))
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    for (lines, &(page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(page_tree_id)
            .contents(content_id);
        let mut resources = page.resources();
        let mut font_resources = resources.fonts();
        for (name, id) in resource_names.iter().zip(&font_ids) {
            if let Some(id) = id {
                font_resources.pair(Name(name.as_bytes()), *id);
            }
        }
        font_resources.finish();
        resources.finish();
        page.finish();
        let content = deflate(&page_content(lines, &resource_names));
        pdf.stream(content_id, &content).filter(Filter::FlateDecode);
    }
    for ((font, program), id) in fonts.iter().zip(&programs).zip(&font_ids) {
        if let (Some(program), Some(id)) = (program, id) {
            write_font(&mut pdf, &mut next_id, *id, font, program);
        }
    }
    pdf.document_info(info_id)
        .title(TextStr(TITLE))
        .producer(TextStr("Storyteller"));
    pdf.set_file_id((document_id.to_vec(), document_id.to_vec()));
    Ok(pdf.finish())
}

/// The content stream of one page.
fn page_content(lines: &[Line], resource_names: &[String]) -> Vec<u8> {
    let mut content = Content::new();
    for line in lines {
        content.set_fill_gray(line.style.gray);
        content.begin_text();
        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, line.x, line.baseline]);
        let mut current_font = None;
        for piece in &line.pieces {
            if current_font != Some(piece.font) {
                content.set_font(Name(resource_names[piece.font].as_bytes()), line.style.size);
                current_font = Some(piece.font);
            }
            let codes: Vec<u8> = piece
                .codes
                .iter()
                .flat_map(|code| code.to_be_bytes())
                .collect();
            if let Some(actual_text) = &piece.actual_text {
                content
                    .begin_marked_content_with_properties(Name(b"Span"))
                    .properties()
                    .actual_text(TextStr(actual_text));
            }
            content.show(Str(&codes));
            if piece.actual_text.is_some() {
                content.end_marked_content();
            }
        }
        content.end_text();
    }
    content.finish().into_vec()
}

/// Writes `font` as a composite (Type 0) font with two-byte codes (the glyphs' new numbers),
/// its widths, its subset program and the map back to Unicode.
fn write_font(
    pdf: &mut Pdf,
    next_id: &mut Ref,
    type0_id: Ref,
    font: &Font<'_>,
    program: &FontProgram,
) {
    let cid_font_id = next_id.bump();
    let descriptor_id = next_id.bump();
    let to_unicode_id = next_id.bump();
    let program_id = next_id.bump();
    let base_font = format!("{}+{}", subset_tag(font), font.postscript_name());
    let base_font = Name(base_font.as_bytes());
    let identity = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };

    pdf.type0_font(type0_id)
        .base_font(base_font)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font_id)
        .to_unicode(to_unicode_id);

    let mut cid_font = pdf.cid_font(cid_font_id);
    cid_font
        .subtype(if program.cff {
            CidFontType::Type0
        } else {
            CidFontType::Type2
        })
        .base_font(base_font)
        .system_info(identity)
        .font_descriptor(descriptor_id)
        .default_width(0.0);
    if !program.cff {
        cid_font.cid_to_gid_map_predefined(Name(b"Identity"));
    }
    let widths: Vec<f32> = font
        .glyphs
        .remapped_gids()
        .map(|id| font.advance(id) * 1000.0)
        .collect();
    cid_font.widths().consecutive(0, widths);
    cid_font.finish();

    let face = &font.face;
    let to_em = 1000.0 / font.units_per_em();
    let bounds = face.global_bounding_box();
    let mut flags = FontFlags::SYMBOLIC;
    flags.set(FontFlags::ITALIC, face.is_italic());
    flags.set(FontFlags::FIXED_PITCH, face.is_monospaced());
    let weight = f32::from(face.weight().to_number());
    let mut descriptor = pdf.font_descriptor(descriptor_id);
    descriptor
        .name(base_font)
        .flags(flags)
        .bbox(Rect::new(
            f32::from(bounds.x_min) * to_em,
            f32::from(bounds.y_min) * to_em,
            f32::from(bounds.x_max) * to_em,
            f32::from(bounds.y_max) * to_em,
        ))
        .italic_angle(face.italic_angle())
        .ascent(f32::from(face.ascender()) * to_em)
        .descent(f32::from(face.descender()) * to_em)
        .cap_height(f32::from(face.capital_height().unwrap_or(face.ascender())) * to_em)
        .stem_v(10.0 + 0.244 * (weight - 50.0));
    if program.cff {
        descriptor.font_file3(program_id);
    } else {
        descriptor.font_file2(program_id);
    }
    descriptor.finish();

    let unicode = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"UCS"),
        supplement: 0,
    };
    let mut cmap = UnicodeCmap::new(Name(b"Custom"), unicode);
    for (&code, &c) in &font.to_unicode {
        cmap.pair(code, c);
    }
    let cmap = deflate(cmap.finish().as_slice());
    pdf.cmap(to_unicode_id, &cmap)
        .name(Name(b"Custom"))
        .system_info(unicode)
        .filter(Filter::FlateDecode);

    let compressed = deflate(&program.bytes);
    let mut stream = pdf.stream(program_id, &compressed);
    stream.filter(Filter::FlateDecode);
    if program.cff {
        stream.pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
    } else {
        stream.pair(
            Name(b"Length1"),
            i32::try_from(program.bytes.len()).unwrap_or(i32::MAX),
        );
    }
    stream.finish();
}

/// The six capital letters PDF puts before a subset font's name, from the glyphs it holds.
fn subset_tag(font: &Font<'_>) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(font.postscript_name().as_bytes());
    for id in font.glyphs.remapped_gids() {
        hasher.update(&id.to_le_bytes());
    }
    hasher.finalize().as_bytes()[..6]
        .iter()
        .map(|byte| char::from(b'A' + byte % 26))
        .collect()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typesetter() -> Typesetter<'static> {
        Typesetter::new(vec![
            Font::new(bundled_face(DEJAVU_SANS).unwrap(), DEJAVU_SANS),
            Font::new(bundled_face(DEJAVU_SANS_BOLD).unwrap(), DEJAVU_SANS_BOLD),
        ])
    }

    #[test]
    fn tokens_alternate_words_and_spaces() {
        assert_eq!(
            tokens("  two words\u{A0}kept"),
            vec![
                (true, "  "),
                (false, "two"),
                (true, " "),
                (false, "words\u{A0}kept")
            ]
        );
        assert!(tokens("").is_empty());
    }

    #[test]
    fn lines_fill_the_column_without_passing_it_and_keep_every_word() {
        let mut typesetter = typesetter();
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
        let lines = typesetter.wrap(&text, BODY_STYLE);
        assert!(lines.len() > 5, "{lines:?}");
        for (index, line) in lines.iter().enumerate() {
            let width = typesetter.width(line, BODY_STYLE);
            assert!(width <= TEXT_WIDTH, "{width} > {TEXT_WIDTH}: {line}");
            // Filled: the next word would not have fitted.
            if index + 1 < lines.len() {
                assert!(width > TEXT_WIDTH - typesetter.width(" jumps", BODY_STYLE));
            }
        }
        let rejoined: Vec<&str> = lines.iter().flat_map(|line| line.split(' ')).collect();
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(rejoined, words);
    }

    #[test]
    fn a_word_wider_than_the_column_breaks_between_characters() {
        let mut typesetter = typesetter();
        let word = "Ω".repeat(300);
        let lines = typesetter.wrap(&format!("a {word} b"), BODY_STYLE);
        assert!(lines.len() >= 3, "{lines:?}");
        assert_eq!(lines[0], "a");
        // The word's last characters share their line with what follows.
        assert_eq!(lines.concat(), format!("a{word} b"));
        for line in &lines {
            assert!(typesetter.width(line, BODY_STYLE) <= TEXT_WIDTH);
        }
    }

    #[test]
    fn an_indent_is_kept_and_the_spaces_where_lines_break_are_dropped() {
        let mut typesetter = typesetter();
        let lines = typesetter.wrap(&format!("    {}", "word ".repeat(60)), BODY_STYLE);
        assert!(lines[0].starts_with("    word"));
        assert!(lines[1..].iter().all(|line| line.starts_with("word")));
        assert!(lines.iter().all(|line| !line.ends_with(' ')));
    }

    #[test]
    fn widths_come_from_the_font() {
        let mut typesetter = typesetter();
        let narrow = typesetter.width("iiii", BODY_STYLE);
        let wide = typesetter.width("WWWW", BODY_STYLE);
        assert!(wide > 2.0 * narrow, "{wide} vs {narrow}");
        // Bold is wider than regular.
        assert!(
            typesetter.width("Stories", TITLE_STYLE) / TITLE_STYLE.size
                > typesetter.width("Stories", BODY_STYLE) / BODY_STYLE.size
        );
    }

    #[test]
    fn a_character_no_font_has_is_a_missing_glyph_box_that_keeps_its_text() {
        let mut typesetter = typesetter();
        let line = typesetter.line_at("a日b", BODY_STYLE, MARGIN, 100.0);
        assert_eq!(line.pieces.len(), 3, "{:?}", line.pieces);
        assert_eq!(line.pieces[1].codes, vec![0]);
        assert_eq!(line.pieces[1].actual_text.as_deref(), Some("日"));
        assert!(line.pieces[0].actual_text.is_none());
        // Invisible formatting characters are left out rather than drawn as boxes.
        let selector = '\u{E0101}';
        assert!(!typesetter.glyph(selector, Weight::Regular).found);
        let line = typesetter.line_at(&format!("a{selector}b"), BODY_STYLE, MARGIN, 100.0);
        assert_eq!(line.pieces.len(), 1, "{:?}", line.pieces);
        assert_eq!(line.pieces[0].codes.len(), 2);
    }

    #[test]
    fn long_stories_run_onto_more_pages_each_line_inside_the_margins() {
        let story = StoryDocument {
            file: "long.mp4".into(),
            source: "/videos/long.mp4".into(),
            paragraphs: (0..60)
                .map(|n| {
                    vec![format!(
                        "Paragraph {n}: {}",
                        "lorem ipsum dolor ".repeat(20)
                    )]
                })
                .collect(),
        };
        let mut typesetter = typesetter();
        typesetter.lay_out(std::slice::from_ref(&story));
        assert!(
            typesetter.pages.len() >= 3,
            "{} pages",
            typesetter.pages.len()
        );
        for page in &typesetter.pages {
            for line in page {
                assert!(line.x >= MARGIN - 0.01 || line.baseline == FOOTER_BASELINE);
                assert!(line.x + line.width <= PAGE_WIDTH - MARGIN + 0.01);
                assert!(line.baseline + line.style.size <= PAGE_HEIGHT - MARGIN + 0.01);
                if line.baseline != FOOTER_BASELINE {
                    assert!(line.baseline >= MARGIN_BOTTOM, "{line:?}");
                }
            }
        }
    }
}
