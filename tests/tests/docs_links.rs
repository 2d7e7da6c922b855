//! Checks the documentation against the repository, by reading files only (no network, no
//! services): every relative link in README.md, CONTRIBUTING.md and docs/*.md resolves to a file
//! (and, for `#anchor`, to a heading of that file), no link leaves the repository, every
//! `make <target>` they show exists in the Makefile, and the README shows every target that
//! `make help` lists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The Markdown files whose links are checked.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let contributing = root.join("CONTRIBUTING.md");
    if contributing.exists() {
        files.push(contributing);
    }
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// A Markdown file split into prose (inline code removed) and code (fenced blocks and inline
/// code spans), line by line.
struct Parsed {
    /// (line number, prose of that line).
    prose: Vec<(usize, String)>,
    /// (line number, code on that line).
    code: Vec<(usize, String)>,
    /// Heading texts, in order.
    headings: Vec<String>,
}

fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed {
        prose: Vec::new(),
        code: Vec::new(),
        headings: Vec::new(),
    };
    let mut fence: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) {
                fence = None;
            } else {
                parsed.code.push((number, line.to_owned()));
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
            fence = Some(marker);
            continue;
        }
        if let Some(heading) = heading_text(trimmed) {
            parsed.headings.push(heading);
        }
        let (prose, spans) = split_inline_code(line);
        parsed.prose.push((number, prose));
        parsed.code.extend(spans.into_iter().map(|span| (number, span)));
    }
    parsed
}

fn heading_text(line: &str) -> Option<String> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        Some(line[hashes..].trim().trim_end_matches('#').trim().to_owned())
    } else {
        None
    }
}

/// Returns the line without its inline code spans, and the spans.
fn split_inline_code(line: &str) -> (String, Vec<String>) {
    let mut prose = String::new();
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        prose.push_str(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let delimiter = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&delimiter) {
            Some(end) => {
                spans.push(after[..end].to_owned());
                rest = &after[end + ticks..];
            }
            None => {
                prose.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    prose.push_str(rest);
    (prose, spans)
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped.
fn slug(heading: &str) -> String {
    let text = heading.replace('`', "");
    text.chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every anchor of a file, with GitHub's `-1`, `-2` suffixes for repeated headings.
fn anchors(headings: &[String]) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for heading in headings {
        let base = slug(heading);
        let mut candidate = base.clone();
        let mut n = 0;
        while anchors.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        anchors.insert(candidate);
    }
    anchors
}

/// Link targets in prose: `[text](target)`, `![alt](target)`, `[label]: target` and `<scheme://…>`.
fn link_targets(prose: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = prose;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.trim_matches(|c| c == '<' || c == '>').to_owned());
        rest = &after[end..];
    }
    let trimmed = prose.trim_start();
    if trimmed.starts_with('[')
        && let Some(colon) = trimmed.find("]: ")
    {
        let target = trimmed[colon + 3..].split_whitespace().next().unwrap_or("");
        targets.push(target.to_owned());
    }
    let mut rest = prose;
    while let Some(at) = rest.find('<') {
        let after = &rest[at + 1..];
        let end = after.find('>').unwrap_or(after.len());
        let inside = &after[..end];
        if inside.contains("://") || inside.starts_with("mailto:") {
            targets.push(inside.to_owned());
        }
        rest = &after[end.min(after.len())..];
    }
    targets
}

fn is_external(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    lower.contains("://") || lower.starts_with("mailto:") || lower.starts_with("//")
}

#[test]
fn docs_relative_links_resolve_and_none_leave_the_repository() {
    let root = root();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let parsed = parse(&read(&file));
        let own_anchors = anchors(&parsed.headings);
        for (line, prose) in &parsed.prose {
            for target in link_targets(prose) {
                checked += 1;
                let place = format!("{}:{line}", relative(&file));
                if target.is_empty() {
                    problems.push(format!("{place}: empty link"));
                    continue;
                }
                if is_external(&target) {
                    problems.push(format!("{place}: link leaves the repository: {target}"));
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                if path.is_empty() {
                    let anchor = anchor.unwrap_or_default();
                    if !own_anchors.contains(anchor) {
                        problems.push(format!("{place}: no heading for #{anchor} in this file"));
                    }
                    continue;
                }
                let resolved = if let Some(from_root) = path.strip_prefix('/') {
                    root.join(from_root)
                } else {
                    file.parent().expect("a file has a directory").join(path)
                };
                let Ok(resolved) = resolved.canonicalize() else {
                    problems.push(format!("{place}: {target} does not exist"));
                    continue;
                };
                if !resolved.starts_with(&root) {
                    problems.push(format!("{place}: {target} points outside the repository"));
                    continue;
                }
                if let Some(anchor) = anchor
                    && resolved.extension().is_some_and(|ext| ext == "md")
                    && !anchors(&parse(&read(&resolved)).headings).contains(anchor)
                {
                    problems.push(format!("{place}: {path} has no heading for #{anchor}"));
                }
            }
        }
    }
    assert!(checked > 0, "no links found at all; is the parser broken?");
    assert!(
        problems.is_empty(),
        "broken documentation links:\n{}",
        problems.join("\n")
    );
}

/// Every rule the Makefile defines, and the ones `make help` lists (those with a `## ` comment).
fn make_targets() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut all = BTreeSet::new();
    let mut listed = BTreeSet::new();
    for line in read(&root().join("Makefile")).lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if rest.starts_with('=')
            || name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            continue;
        }
        all.insert(name.to_owned());
        // The same pattern as the Makefile's own `help`: `^[a-z-]+:.*## `.
        if name.chars().all(|c| c.is_ascii_lowercase() || c == '-') && rest.contains("## ") {
            listed.insert(name.to_owned());
        }
    }
    (all, listed)
}

/// The targets of every `make <target>` in a document's code (fenced blocks and inline code).
fn make_invocations(parsed: &Parsed) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (line, code) in &parsed.code {
        let words: Vec<&str> = code.split_whitespace().collect();
        for pair in words.windows(2) {
            if pair[0] != "make" && !pair[0].ends_with("&&make") {
                continue;
            }
            let target = pair[1].trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
            // `make <target>` is a placeholder, `make -C dir` an option.
            let is_target = !target.is_empty()
                && !pair[1].starts_with(['-', '<'])
                && !target.contains('=')
                && target
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if is_target {
                found.push((*line, target.to_owned()));
            }
        }
    }
    found
}

#[test]
fn docs_make_targets_they_mention_exist() {
    let (all, _) = make_targets();
    assert!(all.contains("help"), "the Makefile parser found no `help` target");
    let mut problems = Vec::new();
    for file in documents() {
        for (line, target) in make_invocations(&parse(&read(&file))) {
            if !all.contains(&target) {
                problems.push(format!(
                    "{}:{line}: `make {target}`: no such target",
                    relative(&file)
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "unknown make targets:\n{}",
        problems.join("\n")
    );
}

#[test]
fn docs_readme_lists_every_make_help_target() {
    let (_, listed) = make_targets();
    assert!(
        listed.len() > 5,
        "the Makefile parser found too few help targets: {listed:?}"
    );
    let readme = parse(&read(&root().join("README.md")));
    let mentioned: BTreeSet<String> = make_invocations(&readme)
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    let missing: Vec<&String> = listed.difference(&mentioned).collect();
    assert!(
        missing.is_empty(),
        "README.md shows no `make <target>` for these targets of `make help`: {missing:?}"
    );
}

#[test]
fn docs_checker_understands_markdown() {
    assert_eq!(slug("Tests and benchmarks"), "tests-and-benchmarks");
    assert_eq!(slug("Bot or human: `BotTurn`s"), "bot-or-human-botturns");
    assert_eq!(
        slug("Workspaces, API keys and channel accounts"),
        "workspaces-api-keys-and-channel-accounts"
    );
    let parsed = parse(
        "# A\n\nSee [x](docs/a.md#b) and `[y](no.md)`.\n```\n[z](no.md)\nmake up\n```\n## A\n`make <target>`\n",
    );
    assert_eq!(link_targets(&parsed.prose[2].1), vec!["docs/a.md#b".to_owned()]);
    assert!(anchors(&parsed.headings).contains("a-1"));
    assert_eq!(make_invocations(&parsed), vec![(6, "up".to_owned())]);
    assert_eq!(
        link_targets("open <http://localhost:8080/x>"),
        vec!["http://localhost:8080/x".to_owned()]
    );
    assert!(link_targets("a <b> tag, x -> y").is_empty());
}
