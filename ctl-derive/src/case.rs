//! Name conversions.

/// `get_hostname` -> `GetHostname`: every `_`-separated word gets an upper-case first
/// letter; the rest of a word is kept as written (`get_IP` -> `GetIP`). Leading, trailing
/// and repeated underscores vanish.
pub(crate) fn snake_to_pascal(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    for word in snake.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// Whether `s` can be written as a (non-raw) Rust identifier.
pub(crate) fn is_ident(s: &str) -> bool {
    !s.starts_with("r#") && syn::parse_str::<syn::Ident>(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case() {
        for (snake, pascal) in [
            ("freeze", "Freeze"),
            ("get_hostname", "GetHostname"),
            ("with_rootfs", "WithRootfs"),
            ("set_cpu_limit2", "SetCpuLimit2"),
            ("lxc_exec_v2_attach", "LxcExecV2Attach"),
            ("_private", "Private"),
            ("double__underscore_", "DoubleUnderscore"),
            ("get_IP", "GetIP"),
            ("already", "Already"),
            ("a", "A"),
            ("ärger_über", "ÄrgerÜber"),
            ("__", ""),
            ("_1x", "1x"),
        ] {
            assert_eq!(snake_to_pascal(snake), pascal, "{snake}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(is_ident("Freeze"));
        assert!(is_ident("GetHostname2"));
        assert!(is_ident("_x"));
        assert!(!is_ident(""));
        assert!(!is_ident("1x"));
        assert!(!is_ident("Get Hostname"));
        assert!(!is_ident("Get-Hostname"));
        assert!(!is_ident("fn"));
        assert!(!is_ident("Self"));
        assert!(!is_ident("r#type"));
    }
}
