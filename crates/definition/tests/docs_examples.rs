//! The definitions shown in the documentation must be true: every fenced block in `README.md` and
//! `docs/*.md` whose info string is exactly `json api` must load without problems, and every block
//! tagged `json invalid-api` must be refused. When a `text` block follows an invalid example
//! directly, each of its lines (`<file>: <path>: <message>`) must be one of the problems reported.
//! Valid examples must not use fields that are ignored (they would load with a warning).

use kafka_edge_definition::{load_str, Format};
use std::path::{Path, PathBuf};

/// A fenced code block: its info string, the line of its opening fence, and its text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `README.md` and every `docs/*.md`, in name order.
fn documents() -> Vec<PathBuf> {
    let root = repository_root();
    let mut documents = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("the docs directory exists")
        .map(|entry| entry.expect("docs entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    documents.extend(pages);
    documents
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String, Vec<&str>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let fence_len = 3 + info.chars().take_while(|c| *c == '`').count();
                    let fence = "`".repeat(fence_len);
                    open = Some((info.trim_start_matches('`').trim().to_string(), index + 1, fence, Vec::new()));
                }
            }
            Some((info, start, fence, mut lines)) => {
                if trimmed.starts_with(&fence) && trimmed.trim_start_matches('`').trim().is_empty() {
                    blocks.push(Block { info, line: start, text: lines.join("\n") });
                } else {
                    lines.push(line);
                    open = Some((info, start, fence, lines));
                }
            }
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    blocks
}

fn display(path: &Path) -> String {
    path.strip_prefix(repository_root()).unwrap_or(path).display().to_string()
}

/// `<file>: <path>: <message>` without the file part.
fn without_file(line: &str) -> &str {
    line.split_once(": ").map_or(line, |(_, rest)| rest)
}

#[test]
fn documented_definitions_load_as_documented() {
    let mut valid = 0;
    let mut invalid = 0;
    let mut failures = Vec::new();
    for document in documents() {
        let markdown = std::fs::read_to_string(&document).expect("readable document");
        let name = display(&document);
        let blocks = blocks(&markdown);
        for (index, block) in blocks.iter().enumerate() {
            let origin = format!("{name}:{}", block.line);
            match block.info.as_str() {
                "json api" => {
                    valid += 1;
                    match load_str(&block.text, Format::Json, &origin) {
                        Ok(loaded) => {
                            // An example shows what works: nothing in it may be ignored.
                            for ignored in loaded.ignored {
                                failures.push(format!("{origin}: example uses a field that is ignored: {ignored}"));
                            }
                        }
                        Err(problems) => {
                            for problem in problems {
                                failures.push(format!("{origin}: expected to load, but: {problem}"));
                            }
                        }
                    }
                }
                "json invalid-api" => {
                    invalid += 1;
                    let problems = match load_str(&block.text, Format::Json, &origin) {
                        Ok(_) => {
                            failures.push(format!("{origin}: documented as invalid, but it loads"));
                            continue;
                        }
                        Err(problems) => problems,
                    };
                    let reported: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
                    let Some(expected) = blocks.get(index + 1).filter(|next| next.info == "text") else { continue };
                    let lines: Vec<&str> = expected.text.lines().filter(|l| !l.trim().is_empty()).collect();
                    if lines.is_empty() {
                        failures.push(format!("{name}:{}: the problem block after {origin} is empty", expected.line));
                    }
                    for line in lines {
                        if !reported.iter().any(|r| r == without_file(line)) {
                            failures.push(format!(
                                "{name}:{}: documented problem not reported: {line}\n  reported: {reported:#?}",
                                expected.line
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(valid > 0, "no `json api` block found in README.md or docs/*.md");
    assert!(invalid > 0, "no `json invalid-api` block found in README.md or docs/*.md");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_demo_definition_in_the_docs_is_the_shipped_example() {
    let root = repository_root();
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("examples/demo-api.json")).expect("examples/demo-api.json"),
    )
    .expect("the example is JSON");
    let markdown = std::fs::read_to_string(root.join("docs/definition.md")).expect("docs/definition.md");
    let documented = blocks(&markdown)
        .into_iter()
        .filter(|block| block.info == "json api")
        .filter_map(|block| serde_json::from_str::<serde_json::Value>(&block.text).ok())
        .any(|value| value == example);
    assert!(documented, "docs/definition.md must show examples/demo-api.json unchanged in a `json api` block");
}

#[test]
fn the_block_reader_finds_blocks_and_their_lines() {
    let markdown = "text\n```json api\n{}\n```\n\n````text\n```\n````\n```\nplain\n```\n";
    let found = blocks(markdown);
    let summary: Vec<(&str, usize, &str)> = found.iter().map(|b| (b.info.as_str(), b.line, b.text.as_str())).collect();
    assert_eq!(summary, [("json api", 2, "{}"), ("text", 6, "```"), ("", 9, "plain")]);
}
