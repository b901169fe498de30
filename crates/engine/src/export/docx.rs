//! The Word (.docx) export: a "Stories" title, then per video a Heading 1 with its file name,
//! its source path in italics and the story's paragraphs. Built with `docx-rs`, whose own
//! styles are few: the title and heading styles are declared here, under the ids and names
//! Word gives its built-in ones, so that Word treats them as its own (navigation pane, table
//! of contents).

use super::StoryDocument;
use crate::EngineError;
use docx_rs::{BreakType, Docx, LineSpacing, Paragraph, Run, Style, StyleType};

/// The document's title, also written as its Title property.
const TITLE: &str = "Stories";

/// Renders `stories` as a Word document.
pub(super) fn render(stories: &[StoryDocument]) -> crate::Result<Vec<u8>> {
    let mut document = Docx::new()
        .default_size(22)
        .add_style(
            Style::new("Title", StyleType::Paragraph)
                .name("Title")
                .based_on("Normal")
                .next("Normal")
                .q_format(true)
                .size(56)
                .line_spacing(LineSpacing::new().after(240)),
        )
        .add_style(
            Style::new("Heading1", StyleType::Paragraph)
                .name("heading 1")
                .based_on("Normal")
                .next("Normal")
                .q_format(true)
                .bold()
                .size(32)
                .outline_lvl(0)
                .line_spacing(LineSpacing::new().before(360).after(80)),
        )
        .add_paragraph(
            Paragraph::new()
                .style("Title")
                .add_run(Run::new().add_text(TITLE)),
        );
    for story in stories {
        document = document
            .add_paragraph(
                Paragraph::new()
                    .style("Heading1")
                    .add_run(text_run(Run::new(), &story.file)),
            )
            .add_paragraph(Paragraph::new().add_run(text_run(Run::new().italic(), &story.source)));
        for paragraph in &story.paragraphs {
            let mut run = Run::new();
            for (index, line) in paragraph.iter().enumerate() {
                if index > 0 {
                    run = run.add_break(BreakType::TextWrapping);
                }
                run = text_run(run, line);
            }
            document = document.add_paragraph(Paragraph::new().add_run(run));
        }
    }
    let mut parts = document.build();
    // docx-rs has no way to set the title among the core properties: its part is written here.
    parts.doc_props.core = core_properties(TITLE).into_bytes();
    let mut packed = std::io::Cursor::new(Vec::new());
    parts.pack(&mut packed).map_err(|e| {
        EngineError::ExportFailed(format!("the Word document could not be packed: {e}"))
    })?;
    Ok(packed.into_inner())
}

/// `run` with `text` added, its tabs as Word tabs (a tab in the text itself would be shown
/// as a space).
fn text_run(mut run: Run, text: &str) -> Run {
    for (index, piece) in text.split('\t').enumerate() {
        if index > 0 {
            run = run.add_tab();
        }
        if !piece.is_empty() {
            run = run.add_text(piece);
        }
    }
    run
}

/// The package's core properties part (`docProps/core.xml`) with `title`. No dates: the same
/// stories give the same document.
fn core_properties(title: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <cp:coreProperties \
         xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:dcterms=\"http://purl.org/dc/terms/\" \
         xmlns:dcmitype=\"http://purl.org/dc/dcmitype/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <dc:title>{}</dc:title><dc:creator>Storyteller</dc:creator>\
         </cp:coreProperties>",
        xml_escaped(title)
    )
}

fn xml_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
