//! Stories out in bulk: every succeeded story with its source file, as Markdown, JSON, text,
//! a Word document or a PDF. Every format renders to bytes; the text formats are UTF-8.
//!
//! In the Word and PDF documents a story's blank lines separate its paragraphs, and a single
//! line break stays a line break within its paragraph.

mod docx;
mod pdf;

use crate::job::{iso8601, Job};
use crate::wire::display_path;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An export format.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExportFormat {
    /// One `##` section per video.
    Markdown,
    /// A JSON array of `{ id, file, source, storyteller, model, preset, cached, finishedAt, story }`.
    Json,
    /// Plain text, videos separated by rules.
    Text,
    /// A Word document: a heading per video, its source path in italics, then the story's
    /// paragraphs.
    Docx,
    /// A PDF of A4 pages with the text embedded as text (selectable and searchable): a heading
    /// per video, its source path, then the story's paragraphs; page numbers at the foot.
    Pdf,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 5] = [
        ExportFormat::Markdown,
        ExportFormat::Json,
        ExportFormat::Text,
        ExportFormat::Docx,
        ExportFormat::Pdf,
    ];

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Markdown => "md",
            ExportFormat::Json => "json",
            ExportFormat::Text => "txt",
            ExportFormat::Docx => "docx",
            ExportFormat::Pdf => "pdf",
        }
    }

    /// Whether the format is binary (Word, PDF) rather than UTF-8 text: such an export does
    /// not belong on a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, ExportFormat::Docx | ExportFormat::Pdf)
    }
}

/// Where the story of the video at `source` goes beside it: `clip.mp4` → `clip.story.md`.
pub fn beside_path(source: &Path, format: ExportFormat) -> PathBuf {
    let mut name = source.file_stem().unwrap_or_default().to_os_string();
    name.push(".story.");
    name.push(format.extension());
    source.with_file_name(name)
}

/// Writes `job`'s story beside its video, once per format, each file whole (written aside,
/// then renamed); with `skip_existing`, a file already there is left as it is. The files
/// written.
pub fn write_beside(
    job: &Job,
    formats: &[ExportFormat],
    skip_existing: bool,
) -> crate::Result<Vec<PathBuf>> {
    write_story_files(job, None, formats, skip_existing)
}

/// [`write_beside`], but into the folder `dir` (made if need be), under the names the story
/// would have beside its video.
pub fn write_into(
    job: &Job,
    dir: &Path,
    formats: &[ExportFormat],
    skip_existing: bool,
) -> crate::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| crate::EngineError::io(dir, &e))?;
    write_story_files(job, Some(dir), formats, skip_existing)
}

fn write_story_files(
    job: &Job,
    dir: Option<&Path>,
    formats: &[ExportFormat],
    skip_existing: bool,
) -> crate::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &format in formats {
        let beside = beside_path(&job.source, format);
        let path = match (dir, beside.file_name()) {
            (Some(dir), Some(name)) => dir.join(name),
            _ => beside,
        };
        if skip_existing && path.exists() {
            continue;
        }
        let mut partial = path.clone().into_os_string();
        partial.push(".part");
        let partial = PathBuf::from(partial);
        let bytes = render(std::slice::from_ref(job), format)?;
        std::fs::write(&partial, bytes).map_err(|e| crate::EngineError::io(&partial, &e))?;
        std::fs::rename(&partial, &path).map_err(|e| crate::EngineError::io(&path, &e))?;
        written.push(path);
    }
    Ok(written)
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "md" | "markdown" => Ok(ExportFormat::Markdown),
            "json" => Ok(ExportFormat::Json),
            "txt" | "text" => Ok(ExportFormat::Text),
            "docx" | "word" => Ok(ExportFormat::Docx),
            "pdf" => Ok(ExportFormat::Pdf),
            other => Err(format!(
                "unknown export format '{other}' (expected md, json, txt, docx or pdf)"
            )),
        }
    }
}

/// One story in a JSON export (camelCase, times in ISO-8601, like the wire model).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportedStory<'a> {
    id: String,
    file: String,
    source: String,
    storyteller: &'a str,
    model: &'a str,
    preset: &'a str,
    cached: bool,
    finished_at: Option<String>,
    story: &'a str,
}

/// Renders the stories of `jobs` (those without a story are left out) in `format`. A PDF may
/// read fonts of this machine, for characters its own font lacks (Chinese, Japanese, Korean):
/// call it off the async runtime.
pub fn render(jobs: &[Job], format: ExportFormat) -> crate::Result<Vec<u8>> {
    let with_story: Vec<(&Job, &str)> = jobs
        .iter()
        .filter_map(|job| job.story.as_deref().map(|story| (job, story)))
        .collect();
    match format {
        ExportFormat::Json => Ok(render_json(&with_story).into_bytes()),
        ExportFormat::Markdown => Ok(render_markdown(&with_story).into_bytes()),
        ExportFormat::Text => Ok(render_plain_text(&with_story).into_bytes()),
        ExportFormat::Docx => docx::render(&documents(&with_story)),
        ExportFormat::Pdf => pdf::render(&documents(&with_story), pdf::FALLBACK_FONTS),
    }
}

fn render_json(with_story: &[(&Job, &str)]) -> String {
    let rows: Vec<ExportedStory<'_>> = with_story
        .iter()
        .map(|(job, story)| ExportedStory {
            id: job.id.to_string(),
            file: job.file_name(),
            source: display_path(&job.source),
            storyteller: &job.storyteller,
            model: &job.model,
            preset: &job.preset,
            cached: job.cached,
            finished_at: job.finished_at_ms.map(iso8601),
            story,
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}

fn render_markdown(with_story: &[(&Job, &str)]) -> String {
    let mut out = String::from("# Stories\n");
    for (job, story) in with_story {
        let _ = write!(
            out,
            "\n## {}\n\n*{}*\n\n{}\n",
            job.file_name(),
            display_path(&job.source),
            story.trim_end()
        );
    }
    out
}

fn render_plain_text(with_story: &[(&Job, &str)]) -> String {
    let mut out = String::new();
    for (index, (job, story)) in with_story.iter().enumerate() {
        if index > 0 {
            out.push_str("\n----------------------------------------\n\n");
        }
        let _ = write!(
            out,
            "{}\n{}\n\n{}\n",
            job.file_name(),
            display_path(&job.source),
            story.trim_end()
        );
    }
    out
}

/// One story as the Word and PDF documents lay it out.
struct StoryDocument {
    /// The video's file name: the heading.
    file: String,
    /// The video's full path.
    source: String,
    /// The story's paragraphs, each a list of lines (never empty, no line blank).
    paragraphs: Vec<Vec<String>>,
}

fn documents(with_story: &[(&Job, &str)]) -> Vec<StoryDocument> {
    with_story
        .iter()
        .map(|(job, story)| StoryDocument {
            file: printable(&job.file_name()),
            source: printable(&display_path(&job.source)),
            paragraphs: paragraphs(story),
        })
        .collect()
}

/// `story` split on blank lines into paragraphs of lines, each line without its trailing
/// white space and without control characters (tabs kept), which no document can show.
fn paragraphs(story: &str) -> Vec<Vec<String>> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in story.lines() {
        let line = printable(line);
        let line = line.trim_end();
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line.to_owned());
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

/// `text` without control characters other than tabs and line breaks.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobState, Stage};
    use std::io::Read as _;

    /// Accents, Greek, Cyrillic, CJK and an emoji: the last two are not in DejaVu Sans.
    const UNICODE_SAMPLE: &str = "Crème brûlée — Ωμέγα, Привет, 日本語 🎬";

    fn job(n: u128, source: &str, story: Option<&str>) -> Job {
        Job {
            source: PathBuf::from(source),
            stage: Stage::Done,
            progress: 1.0,
            attempts: 1,
            story: story.map(str::to_owned),
            finished_at_ms: Some(1_795_399_395_000),
            ..Job::for_tests(n, JobState::Succeeded)
        }
    }

    fn sample_jobs() -> Vec<Job> {
        let first = format!(
            "{UNICODE_SAMPLE}\n\nThe second paragraph,\nwith a line break.\r\n\n \n\nTom & Jerry <3\n"
        );
        vec![
            job(1, "/videos/Été à Paris.mp4", Some(&first)),
            job(2, "/videos/untold.mp4", None),
            job(3, "/videos/beach.mov", Some("Waves roll in.")),
        ]
    }

    /// A story long enough for several pages, of words each found once.
    fn long_story() -> String {
        (0..90)
            .map(|p| {
                (0..40)
                    .map(|w| format!("w{p}x{w}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    fn docx_part(document: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(document)).unwrap();
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    /// The paragraphs of a Word document's body, as the XML of each.
    fn docx_paragraphs(document_xml: &str) -> Vec<&str> {
        document_xml
            .split("</w:p>")
            .filter_map(|part| {
                let start = part.rfind("<w:p>").or_else(|| part.rfind("<w:p "))?;
                Some(&part[start..])
            })
            .collect()
    }

    /// Runs a poppler tool on `pdf` (`{}` in `args` is its path); its standard output. Fails
    /// when the tool is missing, fails, or complains about the file.
    fn poppler(tool: &str, args: &[&str], pdf: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.pdf");
        std::fs::write(&path, pdf).unwrap();
        let path = path.to_str().unwrap();
        let output = std::process::Command::new(tool)
            .args(args.iter().map(|arg| if *arg == "{}" { path } else { arg }))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "{tool} could not run ({e}): the PDF export tests need poppler-utils \
                     (apt-get install poppler-utils)"
                )
            });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{tool} failed: {stderr}");
        assert!(stderr.trim().is_empty(), "{tool} complained: {stderr}");
        String::from_utf8(output.stdout).unwrap()
    }

    fn pdf_text(pdf: &[u8]) -> String {
        poppler("pdftotext", &["-enc", "UTF-8", "{}", "-"], pdf)
    }

    fn pdf_pages(pdf: &[u8]) -> u32 {
        let info = poppler("pdfinfo", &["{}"], pdf);
        info.lines()
            .find_map(|line| line.strip_prefix("Pages:"))
            .unwrap_or_else(|| panic!("no page count: {info}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// The `name="value"` number among an XML start tag's attributes.
    fn attribute(attributes: &str, name: &str) -> f32 {
        let tag = format!(" {attributes}");
        let start = tag.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        let end = start + tag[start..].find('"').unwrap();
        tag[start..end].parse().unwrap()
    }

    #[test]
    fn formats_are_read_from_their_names_and_written_in_camel_case() {
        for (name, format) in [
            ("md", ExportFormat::Markdown),
            ("json", ExportFormat::Json),
            ("text", ExportFormat::Text),
            ("docx", ExportFormat::Docx),
            ("word", ExportFormat::Docx),
            ("pdf", ExportFormat::Pdf),
        ] {
            assert_eq!(name.parse::<ExportFormat>(), Ok(format));
        }
        let error = "odt".parse::<ExportFormat>().unwrap_err();
        assert!(error.contains("md, json, txt, docx or pdf"), "{error}");
        assert_eq!(serde_json::to_value(ExportFormat::Docx).unwrap(), "docx");
        assert_eq!(serde_json::to_value(ExportFormat::Pdf).unwrap(), "pdf");
        assert_eq!(
            serde_json::from_value::<ExportFormat>("pdf".into()).unwrap(),
            ExportFormat::Pdf
        );
        assert_eq!(ExportFormat::Docx.extension(), "docx");
        assert_eq!(ExportFormat::Pdf.extension(), "pdf");
        assert!(ExportFormat::Pdf.is_binary() && ExportFormat::Docx.is_binary());
        assert!(!ExportFormat::Markdown.is_binary() && !ExportFormat::Json.is_binary());
    }

    #[test]
    fn the_text_formats_are_their_utf8_text() {
        let markdown = render(&sample_jobs(), ExportFormat::Markdown).unwrap();
        let markdown = String::from_utf8(markdown).unwrap();
        assert!(markdown.starts_with("# Stories\n\n## Été à Paris.mp4\n"));
        assert!(markdown.contains(UNICODE_SAMPLE));
        assert!(!markdown.contains("untold.mp4"));
        let json: serde_json::Value =
            serde_json::from_slice(&render(&sample_jobs(), ExportFormat::Json).unwrap()).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 2);
    }

    #[test]
    fn stories_split_into_paragraphs_on_blank_lines_keeping_single_line_breaks() {
        assert_eq!(
            paragraphs("One\ntwo  \r\n\n  \n\tThree\u{7}\n\n\n"),
            vec![
                vec!["One".to_owned(), "two".to_owned()],
                vec!["\tThree".to_owned()]
            ]
        );
        assert!(paragraphs("\n \n").is_empty());
    }

    #[test]
    fn a_word_export_has_a_heading_source_and_paragraph_of_its_own_for_each_story() {
        let document = render(&sample_jobs(), ExportFormat::Docx).unwrap();
        assert!(document.starts_with(b"PK"), "not a zip archive");
        let xml = docx_part(&document, "word/document.xml");
        let paragraphs = docx_paragraphs(&xml);
        let expected: [(&str, &[&str]); 9] = [
            ("Stories", &["<w:pStyle w:val=\"Title\""]),
            ("Été à Paris.mp4", &["<w:pStyle w:val=\"Heading1\""]),
            ("/videos/Été à Paris.mp4", &["<w:i "]),
            (UNICODE_SAMPLE, &[]),
            ("The second paragraph,", &["<w:br ", "with a line break."]),
            ("Tom &amp; Jerry &lt;3", &[]),
            ("beach.mov", &["<w:pStyle w:val=\"Heading1\""]),
            ("/videos/beach.mov", &["<w:i "]),
            ("Waves roll in.", &[]),
        ];
        assert_eq!(paragraphs.len(), expected.len(), "{xml}");
        for (paragraph, (text, also)) in paragraphs.iter().zip(expected) {
            assert!(paragraph.contains(text), "{text:?} not in {paragraph}");
            for part in also {
                assert!(paragraph.contains(part), "{part:?} not in {paragraph}");
            }
        }
        assert!(!xml.contains("untold.mp4"));
        let styles = docx_part(&document, "word/styles.xml");
        assert!(styles.contains("w:styleId=\"Heading1\""), "{styles}");
        let core = docx_part(&document, "docProps/core.xml");
        assert!(core.contains("<dc:title>Stories</dc:title>"), "{core}");
    }

    #[test]
    fn an_empty_word_export_is_a_valid_document_with_its_title() {
        let document = render(&[], ExportFormat::Docx).unwrap();
        let xml = docx_part(&document, "word/document.xml");
        assert_eq!(docx_paragraphs(&xml).len(), 1, "{xml}");
        assert!(xml.contains("Stories"));
        for part in ["[Content_Types].xml", "_rels/.rels", "word/styles.xml"] {
            assert!(!docx_part(&document, part).is_empty(), "{part}");
        }
    }

    #[test]
    fn a_pdf_export_is_text_that_reads_back_with_its_fonts_embedded() {
        let pdf = render(&sample_jobs(), ExportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let text = pdf_text(&pdf);
        for expected in [
            "Stories",
            "Été à Paris.mp4",
            "/videos/Été à Paris.mp4",
            UNICODE_SAMPLE,
            "The second paragraph,\nwith a line break.",
            "Tom & Jerry <3",
            "beach.mov",
            "Waves roll in.",
            "Page 1 of 1",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        assert!(!text.contains("untold"));
        assert_eq!(pdf_pages(&pdf), 1);
        // Every font embedded, as a subset, with its map back to Unicode.
        let fonts = poppler("pdffonts", &["{}"], &pdf);
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert!(rows.len() >= 2, "{fonts}");
        for row in rows {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let flags = &columns[columns.len() - 5..columns.len() - 2];
            assert_eq!(
                flags,
                ["yes", "yes", "yes"],
                "not embedded, subset, unicode: {row}"
            );
        }
    }

    #[test]
    fn characters_no_font_has_are_still_text_in_the_pdf() {
        // No fonts of this machine to fall back on: CJK and the emoji become boxes that still
        // read back as what they stand for.
        let stories = documents(&[(&sample_jobs()[0], UNICODE_SAMPLE)]);
        let pdf = pdf::render(&stories, &[]).unwrap();
        assert!(pdf_text(&pdf).contains(UNICODE_SAMPLE));
    }

    #[test]
    fn a_font_of_this_machine_draws_what_dejavu_lacks_when_there_is_one() {
        let stories = documents(&[(&sample_jobs()[0], UNICODE_SAMPLE)]);
        let present: Vec<&str> = pdf::FALLBACK_FONTS
            .iter()
            .copied()
            .filter(|path| Path::new(path).exists())
            .collect();
        if present.is_empty() {
            eprintln!("no CJK font on this machine: only the missing-glyph path is checked");
        }
        for path in present {
            let pdf = pdf::render(&stories, &[path]).unwrap();
            assert!(pdf_text(&pdf).contains(UNICODE_SAMPLE), "{path}");
            let fonts = poppler("pdffonts", &["{}"], &pdf);
            // Two header lines, DejaVu Sans regular and bold, and the font for the CJK.
            assert_eq!(fonts.lines().count(), 2 + 3, "{path}: {fonts}");
        }
    }

    #[test]
    fn a_long_pdf_export_runs_onto_pages_with_every_word_whole_and_inside_the_page() {
        let long = long_story();
        let unbroken = "Ж".repeat(150);
        let story = format!("The longest word: {unbroken} ends here.\n\n{long}");
        let jobs = [job(1, "/videos/long.mp4", Some(&story))];
        let pdf = render(&jobs, ExportFormat::Pdf).unwrap();
        let pages = pdf_pages(&pdf);
        assert!(pages >= 4, "{pages} pages");
        let text = pdf_text(&pdf);
        assert!(text.contains(&format!("Page {pages} of {pages}")), "{text}");
        // Every word read back whole, in order.
        let mut read_back = text.split_whitespace();
        for word in long.split_whitespace() {
            assert!(
                read_back.any(|w| w == word),
                "{word} missing or out of order"
            );
        }
        // The word too long for a line is broken across lines, every character kept.
        let squeezed: String = text.split_whitespace().collect();
        assert!(
            squeezed.contains(&format!("word:{unbroken}ends")),
            "{}",
            &text[text.find("longest").unwrap_or(0)..]
        );
        // Each word inside the page's margins.
        let boxes = poppler("pdftotext", &["-bbox", "{}", "-"], &pdf);
        let mut words = 0;
        for tag in boxes.split("<word ").skip(1) {
            let (x_min, x_max) = (attribute(tag, "xMin"), attribute(tag, "xMax"));
            let (y_min, y_max) = (attribute(tag, "yMin"), attribute(tag, "yMax"));
            assert!(
                x_min >= 56.0 && x_max <= 595.28 - 56.0,
                "outside the margins: {tag}"
            );
            // From the page's top: below the top margin, above the page number's foot.
            assert!(
                y_min >= 54.0 && y_max <= 841.89 - 25.0,
                "outside the page: {tag}"
            );
            words += 1;
        }
        assert!(words > 3600, "{words} words");
    }

    #[test]
    fn an_empty_pdf_export_is_a_valid_one_page_document() {
        let pdf = render(&[], ExportFormat::Pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(pdf_pages(&pdf), 1);
        assert_eq!(
            pdf_text(&pdf).split_whitespace().collect::<Vec<_>>(),
            ["Stories", "Page", "1", "of", "1"]
        );
    }

    #[test]
    fn pdf_and_word_stories_are_written_beside_their_videos() {
        let dir = tempfile::tempdir().unwrap();
        let mut told = job(1, "", Some("Told."));
        told.source = dir.path().join("clip.mp4");
        let written = write_beside(&told, &[ExportFormat::Docx, ExportFormat::Pdf], false).unwrap();
        assert_eq!(
            written,
            vec![
                dir.path().join("clip.story.docx"),
                dir.path().join("clip.story.pdf")
            ]
        );
        let docx = std::fs::read(&written[0]).unwrap();
        assert!(docx_part(&docx, "word/document.xml").contains("Told."));
        assert!(pdf_text(&std::fs::read(&written[1]).unwrap()).contains("Told."));
    }
}
