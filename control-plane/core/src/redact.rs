//! Credentials kept out of what is logged or shown.

/// Hides the password of a database URL so it can be logged or shown.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://pharos:s3cret@db:5432/pharos"),
            "postgres://pharos:***@db:5432/pharos"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:5/x"),
            "postgres://postgres@127.0.0.1:5/x"
        );
        assert_eq!(redact("sqlite:///tmp/p.db"), "sqlite:///tmp/p.db");
    }
}
