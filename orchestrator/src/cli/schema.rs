//! `rootfix schema [--out DIR]`: the JSON Schemas of both kinds.

use std::path::Path;
use std::process::ExitCode;

pub fn run(out: Option<&Path>) -> ExitCode {
    for (name, text) in crate::schema::all() {
        match out {
            None => print!("{text}"),
            Some(dir) => {
                let path = dir.join(name);
                if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &text)) {
                    eprintln!("rootfix schema: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}
