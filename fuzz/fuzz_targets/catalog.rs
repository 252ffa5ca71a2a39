//! The playbook and action loader (YAML to catalog): any file is either a catalog or a list of
//! problems, each inside the file (line and column within its text).
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use rootfix::catalog::Catalog;
use rootfix::catalog::parse::Source;
use rootfix_fuzz::yaml_lines;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two files when the input holds the separator: the cross-file checks (actions a playbook
    // names, duplicate names) are reached too.
    let sources: Vec<Source> = text
        .splitn(2, "\n#--file--\n")
        .enumerate()
        .map(|(i, part)| Source {
            path: PathBuf::from(format!("fuzz/{i}.yaml")),
            text: part.to_string(),
        })
        .collect();
    let Err(problems) = Catalog::from_sources(&sources) else {
        return;
    };
    assert!(!problems.is_empty(), "a refusal says why");
    for p in &problems {
        let source = sources
            .iter()
            .find(|s| s.path == p.file)
            .expect("a problem names one of the files");
        let lines = yaml_lines(&source.text);
        assert!(
            p.position.line >= 1 && p.position.line <= lines,
            "line {} outside 1..={lines}: {p:?}",
            p.position.line
        );
        assert!(p.position.column >= 1, "column from 1: {p:?}");
        assert!(!p.message.is_empty());
    }
});
