//! The config loader: any file is a config or a list of problems inside the file. No
//! environment variable is set. Inputs that name a CA file are skipped: reading the file named is
//! that field's job, and a fuzzer would name /dev/zero.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rootfix::config::{ConfigError, ServeConfig};
use rootfix_fuzz::yaml_lines;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("ca_file") {
        return;
    }
    let path = Path::new("/nonexistent/rootfix-fuzz/rootfix.yaml");
    match ServeConfig::parse(path, text, &|_| None) {
        Ok(_) => {}
        Err(ConfigError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "a refusal says why");
            let lines = yaml_lines(text);
            for p in &problems {
                assert!(
                    p.position.line >= 1 && p.position.line <= lines,
                    "line {} outside 1..={lines}: {p:?}",
                    p.position.line
                );
            }
        }
        Err(other) => panic!("parse reads no file: {other}"),
    }
});
