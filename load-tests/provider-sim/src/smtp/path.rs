//! `MAIL FROM:` / `RCPT TO:` argument parsing.

/// `args` after a case-insensitive `keyword` (`FROM:`, `TO:`).
pub(super) fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let head = args.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| &args[keyword.len()..])
}

/// `<path> params` (a bare address is tolerated): the path without brackets or source route,
/// and the parameters.
pub(super) fn parse_path(args: &str) -> Option<(String, &str)> {
    let args = args.trim_start();
    let (path, params) = match args.strip_prefix('<') {
        Some(rest) => {
            let close = rest.find('>')?;
            (&rest[..close], &rest[close + 1..])
        }
        None => args.split_once(' ').unwrap_or((args, "")),
    };
    // A source route (`@a,@b:user@host`) is ignored (RFC 5321 §4.1.1.3).
    let path = match path.strip_prefix('@') {
        Some(_) => path.split_once(':')?.1,
        None => path,
    };
    let valid = !path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    (valid && (params.is_empty() || params.starts_with(' '))).then(|| (path.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed_leniently_but_safely() {
        assert_eq!(parse_path("<a@x> SIZE=10"), Some(("a@x".to_owned(), " SIZE=10")));
        assert_eq!(parse_path(" <>"), Some((String::new(), "")));
        assert_eq!(parse_path("a@x"), Some(("a@x".to_owned(), "")));
        assert_eq!(parse_path("<@r1,@r2:a@x>"), Some(("a@x".to_owned(), "")));
        assert_eq!(parse_path("<a@x"), None);
        assert_eq!(parse_path("<a b@x>"), None);
        assert_eq!(parse_path("<a@x>junk"), None);
        assert_eq!(strip_keyword("from:<a@x>", "FROM:"), Some("<a@x>"));
        assert_eq!(strip_keyword("FR", "FROM:"), None);
        assert_eq!(strip_keyword("FRÖM:", "FROM:"), None);
    }
}
