//! The patch machinery of the build script, on synthetic trees, and the repository's patches.

#[path = "../build/patches.rs"]
#[allow(dead_code)]
mod patches;

use std::fs;
use std::path::{Path, PathBuf};

use patches::{Outcome, apply, load_dir, parse, select, sync_patched, touched_paths};

const HEADER: &str = "# What: greet the world\n# Why: the test needs a reason\n\
                      # Target: demo 1.0\n# When: always\n# Upstream: not upstream\n";

const DIFF: &str = "--- a/src/hello.c\n+++ b/src/hello.c\n@@ -1,4 +1,4 @@\n int main() {\n\
                    -  puts(\"hello\");\n+  puts(\"hello, world\");\n   return 0;\n }\n";

const ORIGINAL: &str = "int main() {\n  puts(\"hello\");\n  return 0;\n}\n";
const PATCHED: &str = "int main() {\n  puts(\"hello, world\");\n  return 0;\n}\n";

fn tree(name: &str, contents: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("mlx-sys-patch-test-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(root.join("src/hello.c"), contents).unwrap();
    root
}

fn read(root: &Path) -> String {
    fs::read_to_string(root.join("src/hello.c")).unwrap()
}

#[test]
fn parses_header_and_hunks() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    assert_eq!(patch.tree, "demo");
    assert_eq!(patch.version, "1.0");
    assert_eq!(patch.when, "always");
    assert_eq!(patch.what, "greet the world");
    assert_eq!(patch.files.len(), 1);
    assert_eq!(patch.files[0].path, "src/hello.c");
    let hunk = &patch.files[0].hunks[0];
    assert_eq!(hunk.old_start, 1);
    assert_eq!(hunk.old.len(), 4);
    assert_eq!(hunk.new[1], "  puts(\"hello, world\");");
}

#[test]
fn applies_once_then_reports_already_applied() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    let root = tree("idempotent", ORIGINAL);
    assert_eq!(apply(&patch, &root).unwrap(), Outcome::Applied);
    assert_eq!(read(&root), PATCHED);
    assert_eq!(apply(&patch, &root).unwrap(), Outcome::AlreadyApplied);
    assert_eq!(read(&root), PATCHED);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn finds_hunks_that_moved() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    let root = tree("moved", &format!("// a comment\n// another\n{ORIGINAL}"));
    assert_eq!(apply(&patch, &root).unwrap(), Outcome::Applied);
    assert_eq!(read(&root), format!("// a comment\n// another\n{PATCHED}"));
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_patch_that_does_not_apply_names_itself_and_changes_nothing() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    let other = "int main() {\n  puts(\"bonjour\");\n  return 0;\n}\n";
    let root = tree("mismatch", other);
    let err = apply(&patch, &root).unwrap_err();
    assert!(err.contains("demo.patch"), "{err}");
    assert!(err.contains("src/hello.c"), "{err}");
    assert!(err.contains("hunk 1"), "{err}");
    assert_eq!(read(&root), other);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_file_is_an_error() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    let root = tree("missing", ORIGINAL);
    fs::remove_file(root.join("src/hello.c")).unwrap();
    let err = apply(&patch, &root).unwrap_err();
    assert!(err.contains("demo.patch") && err.contains("cannot read"), "{err}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn headers_are_required() {
    let without_upstream = HEADER.replace("# Upstream: not upstream\n", "");
    let err = parse("bad.patch", &format!("{without_upstream}{DIFF}")).unwrap_err();
    assert!(err.contains("bad.patch") && err.contains("Upstream"), "{err}");
    let err = parse("empty.patch", HEADER).unwrap_err();
    assert!(err.contains("no diff"), "{err}");
}

#[test]
fn selection_follows_tree_version_and_condition() {
    let make = |name: &str, target: &str, when: &str| {
        let header =
            HEADER.replace("demo 1.0", target).replace("When: always", &format!("When: {when}"));
        parse(name, &format!("{header}{DIFF}")).unwrap()
    };
    let all = vec![
        make("a.patch", "demo 1.0", "always"),
        make("b.patch", "demo 1.0", "metal-compat"),
        make("c.patch", "demo 0.9", "always"),
        make("d.patch", "other 1.0", "always"),
    ];
    let names = |v: Vec<&patches::Patch>| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let (chosen, stale) = select(&all, "demo", "1.0", |_| false);
    assert_eq!(names(chosen), ["a.patch"]);
    assert_eq!(names(stale), ["c.patch"]);
    let (chosen, _) = select(&all, "demo", "1.0", |when| when == "metal-compat");
    assert_eq!(names(chosen), ["a.patch", "b.patch"]);
}

#[test]
fn repository_patches_parse_and_target_the_pinned_trees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patches");
    let all = load_dir(&dir).unwrap();
    assert!(all.iter().any(|p| p.tree == "mlx-c" && p.when == "always"), "{all:?}");
    for patch in &all {
        let pinned = match patch.tree.as_str() {
            "mlx-c" => mlx_sys::MLX_C_VERSION,
            "mlx" => mlx_sys::MLX_VERSION,
            other => panic!("{} targets unknown tree {other}", patch.name),
        };
        assert_eq!(patch.version, pinned, "{} targets a stale version", patch.name);
        assert!(matches!(patch.when.as_str(), "always" | "metal-compat"), "{}", patch.name);
    }
}

#[test]
fn sync_applies_undoes_and_rewrites_nothing_when_unchanged() {
    let compat =
        parse("compat.patch", &format!("{HEADER}{DIFF}").replace("always", "metal-compat"))
            .unwrap();
    let pristine = tree("sync-pristine", ORIGINAL);
    let copy = tree("sync-copy", ORIGINAL);
    let known = [&compat];
    assert_eq!(touched_paths(&known), ["src/hello.c"]);

    // MLX_METAL_COMPAT on (or an old SDK): the copy gets the patch, the pristine tree does not.
    assert_eq!(sync_patched(&pristine, &copy, &known, &[&compat]).unwrap(), ["src/hello.c"]);
    assert_eq!(read(&copy), PATCHED);
    assert_eq!(read(&pristine), ORIGINAL);
    // The same settings again: nothing is written, so nothing is recompiled.
    assert!(sync_patched(&pristine, &copy, &known, &[&compat]).unwrap().is_empty());
    assert_eq!(read(&copy), PATCHED);

    // MLX_METAL_COMPAT off (or a newer SDK): the patch is undone.
    assert_eq!(sync_patched(&pristine, &copy, &known, &[]).unwrap(), ["src/hello.c"]);
    assert_eq!(read(&copy), ORIGINAL);
    assert!(sync_patched(&pristine, &copy, &known, &[]).unwrap().is_empty());

    // And redone.
    assert_eq!(sync_patched(&pristine, &copy, &known, &[&compat]).unwrap(), ["src/hello.c"]);
    assert_eq!(read(&copy), PATCHED);
    fs::remove_dir_all(pristine).unwrap();
    fs::remove_dir_all(copy).unwrap();
}

#[test]
fn sync_fails_with_the_patch_name_when_the_pristine_tree_differs() {
    let patch = parse("demo.patch", &format!("{HEADER}{DIFF}")).unwrap();
    let pristine = tree("sync-bad-pristine", "int main() { return 1; }\n");
    let copy = tree("sync-bad-copy", ORIGINAL);
    let err = sync_patched(&pristine, &copy, &[&patch], &[&patch]).unwrap_err();
    assert!(err.contains("demo.patch") && err.contains("src/hello.c"), "{err}");
    assert_eq!(read(&copy), ORIGINAL, "nothing written");
    fs::remove_dir_all(pristine).unwrap();
    fs::remove_dir_all(copy).unwrap();
}
