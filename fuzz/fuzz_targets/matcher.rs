//! Alertmanager matchers: any text is a matcher or an error with a column inside the text; a
//! matcher printed and parsed again is the same matcher and matches the same labels.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use rootfix::model::matcher::Matcher;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expression, value) = text.split_once('\n').unwrap_or((text, ""));
    match Matcher::parse(expression) {
        Err(e) => assert!(
            e.column >= 1 && e.column <= expression.len() + 1,
            "column {} outside {expression:?}",
            e.column
        ),
        Ok(matcher) => {
            let printed = matcher.to_string();
            let again = Matcher::parse(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (from {expression:?}) does not parse: {e}"));
            assert_eq!(again.to_string(), printed);
            let labels = BTreeMap::from([(matcher.name.clone(), value.to_string())]);
            assert_eq!(again.matches(&labels), matcher.matches(&labels), "{printed:?}");
        }
    }
});
