//! The layering ARCHITECTURE.md promises, checked on the source: `state/` and `record/` import
//! nothing from the logic above them, no two modules of `autonomy/` import each other (directly
//! or in a loop), and no source file grows past 600 lines.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The source without `#[cfg(test)]` modules (unit tests may import what they like).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text
        .find("#[cfg(test)]\nmod tests")
        .or_else(|| text.find("#[cfg(test)]\npub(crate) mod tests"))
    {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[test]
fn state_and_record_import_nothing_from_the_logic_above_them() {
    let src = support::repo_path("orchestrator/src");
    let mut offending = Vec::new();
    for (layer, forbidden) in [
        ("state", &["autonomy", "fix", "events", "server"][..]),
        (
            "record",
            &["state", "autonomy", "fix", "events", "server", "runner"][..],
        ),
    ] {
        for file in rust_files(&src.join(layer)) {
            for (n, line) in code_of(&file).lines().enumerate() {
                for f in forbidden {
                    if line.contains(&format!("crate::{f}::")) || line.contains(&format!("crate::{f};")) {
                        offending.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(offending.is_empty(), "layering broken:\n{}", offending.join("\n"));
}

#[test]
fn no_two_autonomy_modules_import_each_other_in_a_loop() {
    let dir = support::repo_path("orchestrator/src/autonomy");
    let modules: BTreeSet<String> = rust_files(&dir)
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|m| m != "mod")
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        let code = code_of(&dir.join(format!("{m}.rs")));
        let used: BTreeSet<String> = modules
            .iter()
            .filter(|other| *other != m)
            .filter(|other| {
                code.contains(&format!("super::{other}::"))
                    || code.contains(&format!("super::{other};"))
                    || code.contains(&format!("crate::autonomy::{other}::"))
            })
            .cloned()
            .collect();
        edges.insert(m.clone(), used);
    }
    // The parts of ARCHITECTURE.md's order really depend on one another (the check sees them).
    assert!(edges["decide"].contains("lifecycle"), "{edges:#?}");
    assert!(edges["lifecycle"].contains("stages"), "{edges:#?}");
    // Depth-first search for a cycle.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in &edges[m] {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        if let Some(cycle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("autonomy modules import each other: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_source_file_is_over_600_lines() {
    let src = support::repo_path("orchestrator/src");
    let long: Vec<String> = rust_files(&src)
        .iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(p).unwrap().lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}
