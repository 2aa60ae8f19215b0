//! Pages of list answers: the page size a request may ask for, and page tokens, which are
//! opaque to clients.

use super::error::ApiError;

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;

/// The page size to use for a request's `page_size` (0: the default).
pub fn page_size(requested: u32) -> Result<usize, ApiError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        1..=MAX_PAGE_SIZE => Ok(requested as usize),
        _ => Err(ApiError::InvalidArgument(format!(
            "page_size {requested} is too large; the maximum is {MAX_PAGE_SIZE}"
        ))),
    }
}

/// Page tokens are opaque to clients: the hex of the last key returned.
pub fn encode_token(key: Option<String>) -> String {
    key.map(|key| hex::encode(format!("v1:{key}")))
        .unwrap_or_default()
}

pub fn decode_token(token: &str) -> Result<Option<String>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("v1:").map(str::to_owned))
        .map(Some)
        .ok_or_else(|| {
            ApiError::InvalidArgument(
                "invalid page_token: pass the next_page_token of a previous response, or empty for the first page"
                    .to_owned(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let token = encode_token(Some("api".to_owned()));
        assert_eq!(decode_token(&token).unwrap(), Some("api".to_owned()));
        assert_eq!(decode_token("").unwrap(), None);
        assert!(decode_token("zz").is_err());
        assert!(decode_token(&hex::encode("other")).is_err());
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0).unwrap(), 100);
        assert_eq!(page_size(1000).unwrap(), 1000);
        assert!(page_size(1001).is_err());
    }
}
