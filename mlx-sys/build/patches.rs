//! Patch files for the native sources: parsing their header, choosing the ones that target a
//! tree, and applying them idempotently.
//!
//! A patch file starts with `# Key: value` header lines (`What`, `Why`, `Target`, `When`,
//! `Upstream`), followed by a unified diff whose paths are relative to the tree root (`a/` and
//! `b/` prefixes are stripped). `Target` names the tree and version (`mlx-c 0.7.0`,
//! `mlx 0.32.2`); `When` says when it applies (`always`, or a condition such as `metal-compat`).
//!
//! Applying is idempotent: a hunk whose replacement text is already in place counts as applied,
//! so running the build twice, or on a tree patched by an earlier build, changes nothing. A hunk
//! that matches neither way fails with the patch's name, the file and the hunk.
//!
//! This file has no dependencies beyond `std` so that the tests can include it.

use std::fs;
use std::path::{Path, PathBuf};

/// One patch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// The file name, used in every message.
    pub name: String,
    /// The tree it targets, e.g. `mlx-c`.
    pub tree: String,
    /// The version of that tree it was written against.
    pub version: String,
    /// When it applies: `always`, or a named condition.
    pub when: String,
    /// The one-line summary from the header.
    pub what: String,
    /// The edits, file by file.
    pub files: Vec<FileEdit>,
}

/// The hunks of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// The path relative to the tree root.
    pub path: String,
    /// The hunks, in file order.
    pub hunks: Vec<Hunk>,
}

/// One hunk: the lines before and after, with context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The 1-based line where the old text starts, from the `@@` header.
    pub old_start: usize,
    /// The old lines (context and removed).
    pub old: Vec<String>,
    /// The new lines (context and added).
    pub new: Vec<String>,
}

/// What applying a patch did.
#[allow(dead_code)] // the build goes through `sync_patched`; `apply` patches a tree in place
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one hunk changed a file.
    Applied,
    /// Every hunk was already in place.
    AlreadyApplied,
}

const REQUIRED_KEYS: [&str; 5] = ["What", "Why", "Target", "When", "Upstream"];

/// Parses a patch file's text.
pub fn parse(name: &str, text: &str) -> Result<Patch, String> {
    let mut header: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.peek() {
        if line.starts_with("--- ") {
            break;
        }
        let line = lines.next().unwrap_or_default();
        if let Some(rest) = line.strip_prefix("# ") {
            match rest.split_once(": ") {
                Some((key, value)) if REQUIRED_KEYS.contains(&key) => {
                    header.push((key.to_owned(), value.trim().to_owned()));
                }
                _ => {
                    if let Some(last) = header.last_mut() {
                        last.1.push(' ');
                        last.1.push_str(rest.trim());
                    }
                }
            }
        } else if !line.trim().is_empty() {
            return Err(format!("patch {name}: unexpected line before the diff: {line:?}"));
        }
    }
    let get = |key: &str| {
        header
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("patch {name}: the header has no `# {key}:` line"))
    };
    for key in REQUIRED_KEYS {
        get(key)?;
    }
    let target = get("Target")?;
    let (tree, version) = target
        .split_once(' ')
        .ok_or_else(|| format!("patch {name}: `Target: {target}` must be `<tree> <version>`"))?;
    let files = parse_diff(name, lines.collect())?;
    if files.is_empty() {
        return Err(format!("patch {name}: no diff after the header"));
    }
    Ok(Patch {
        name: name.to_owned(),
        tree: tree.to_owned(),
        version: version.trim().to_owned(),
        when: get("When")?,
        what: get("What")?,
        files,
    })
}

fn strip_diff_path(raw: &str) -> String {
    let path = raw.split('\t').next().unwrap_or(raw).trim();
    path.strip_prefix("b/").or_else(|| path.strip_prefix("a/")).unwrap_or(path).to_owned()
}

fn parse_diff(name: &str, lines: Vec<&str>) -> Result<Vec<FileEdit>, String> {
    let mut files: Vec<FileEdit> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("--- ") {
            let plus = lines.get(i + 1).copied().unwrap_or_default();
            let Some(path) = plus.strip_prefix("+++ ") else {
                return Err(format!(
                    "patch {name}: `--- ` on line {} is not followed by `+++ `",
                    i + 1
                ));
            };
            files.push(FileEdit { path: strip_diff_path(path), hunks: Vec::new() });
            i += 2;
        } else if line.starts_with("@@ ") {
            let file = files
                .last_mut()
                .ok_or_else(|| format!("patch {name}: hunk before any file header"))?;
            let (old_start, old_len, new_len) = parse_hunk_header(line)
                .ok_or_else(|| format!("patch {name}: bad hunk header {line:?}"))?;
            let mut hunk = Hunk { old_start, old: Vec::new(), new: Vec::new() };
            i += 1;
            while hunk.old.len() < old_len || hunk.new.len() < new_len {
                let Some(body) = lines.get(i) else {
                    return Err(format!("patch {name}: hunk {line:?} of {} ends early", file.path));
                };
                match body.chars().next() {
                    Some(' ') | None => {
                        let text = body.get(1..).unwrap_or_default().to_owned();
                        hunk.old.push(text.clone());
                        hunk.new.push(text);
                    }
                    Some('-') => hunk.old.push(body[1..].to_owned()),
                    Some('+') => hunk.new.push(body[1..].to_owned()),
                    Some('\\') => {}
                    _ => return Err(format!("patch {name}: bad line in hunk {line:?}: {body:?}")),
                }
                i += 1;
            }
            file.hunks.push(hunk);
        } else {
            i += 1;
        }
    }
    Ok(files)
}

/// `@@ -l,n +l,n @@` into (old start, old length, new length).
fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize)> {
    let mut parts = line.split_whitespace().skip(1);
    let range = |part: &str| -> Option<(usize, usize)> {
        let (start, len) = part.split_once(',').unwrap_or((part, "1"));
        Some((start.parse().ok()?, len.parse().ok()?))
    };
    let (old_start, old_len) = range(parts.next()?.strip_prefix('-')?)?;
    let (_, new_len) = range(parts.next()?.strip_prefix('+')?)?;
    Some((old_start, old_len, new_len))
}

/// Reads every `*.patch` file of `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Patch>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "patch"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text = fs::read_to_string(path)
                .map_err(|e| format!("cannot read patch {}: {e}", path.display()))?;
            parse(&name, &text)
        })
        .collect()
}

/// Finds `needle` as consecutive lines of `haystack`, preferring the match nearest `hint`.
fn find_block(haystack: &[String], needle: &[String], hint: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(hint.min(haystack.len()));
    }
    if needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .filter(|&at| haystack[at..at + needle.len()] == *needle)
        .min_by_key(|&at| at.abs_diff(hint))
}

/// Applies `patch` to the tree at `root`, in place.
#[allow(dead_code)] // the build goes through `sync_patched`, which keeps a pristine tree apart
pub fn apply(patch: &Patch, root: &Path) -> Result<Outcome, String> {
    let mut changed = false;
    for file in &patch.files {
        let path = root.join(&file.path);
        let text = fs::read_to_string(&path).map_err(|e| {
            format!("patch {} does not apply: cannot read {}: {e}", patch.name, path.display())
        })?;
        let patched = apply_to_text(patch, file, &text)?;
        if patched != text {
            fs::write(&path, patched)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            changed = true;
        }
    }
    Ok(if changed { Outcome::Applied } else { Outcome::AlreadyApplied })
}

/// The text of `file` after `patch`'s hunks for it; hunks already in place are left as they are.
fn apply_to_text(patch: &Patch, file: &FileEdit, text: &str) -> Result<String, String> {
    let trailing_newline = text.ends_with('\n');
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut changed = false;
    for (index, hunk) in file.hunks.iter().enumerate() {
        let hint = hunk.old_start.saturating_sub(1);
        let new_present = hunk.new != hunk.old && find_block(&lines, &hunk.new, hint).is_some();
        if new_present {
            continue;
        }
        match find_block(&lines, &hunk.old, hint) {
            Some(at) => {
                lines.splice(at..at + hunk.old.len(), hunk.new.iter().cloned());
                changed = true;
            }
            None => {
                return Err(format!(
                    "patch {} does not apply: hunk {} of {} (at line {}) matches neither the \
                     original nor the patched text; is the tree at {} {}?",
                    patch.name,
                    index + 1,
                    file.path,
                    hunk.old_start,
                    patch.tree,
                    patch.version
                ));
            }
        }
    }
    if !changed {
        return Ok(text.to_owned());
    }
    let mut out = lines.join("\n");
    if trailing_newline {
        out.push('\n');
    }
    Ok(out)
}

/// The paths (relative to the tree root) that any of `patches` edits, sorted, without repeats.
pub fn touched_paths(patches: &[&Patch]) -> Vec<String> {
    let mut paths: Vec<String> =
        patches.iter().flat_map(|p| p.files.iter().map(|f| f.path.clone())).collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Brings the files of `copy` that any patch of `known` edits to their pristine text (from
/// `pristine`) with the `chosen` patches applied, in order. Only files whose text changes are
/// written, so that a build with the same patches recompiles nothing, and a patch that is no
/// longer chosen (`MLX_METAL_COMPAT` or the SDK changed) is undone. Returns the paths written.
pub fn sync_patched(
    pristine: &Path,
    copy: &Path,
    known: &[&Patch],
    chosen: &[&Patch],
) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for path in touched_paths(known) {
        let source = pristine.join(&path);
        let mut text = fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {} to patch it: {e}", source.display()))?;
        for patch in chosen {
            for file in patch.files.iter().filter(|f| f.path == path) {
                text = apply_to_text(patch, file, &text)?;
            }
        }
        let target = copy.join(&path);
        if fs::read_to_string(&target).is_ok_and(|old| old == text) {
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&target, text).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The patches of `all` that target `tree` at `version` and whose condition is on.
/// Patches for another version of the same tree are returned separately so the caller can warn.
pub fn select<'a>(
    all: &'a [Patch],
    tree: &str,
    version: &str,
    condition_on: impl Fn(&str) -> bool,
) -> (Vec<&'a Patch>, Vec<&'a Patch>) {
    let mut chosen = Vec::new();
    let mut stale = Vec::new();
    for patch in all.iter().filter(|p| p.tree == tree) {
        if patch.version != version {
            stale.push(patch);
        } else if patch.when == "always" || condition_on(&patch.when) {
            chosen.push(patch);
        }
    }
    (chosen, stale)
}
