//! Logging: to stderr, as text for people or as one JSON object per line for a log collector
//! (IMPACT_LOG_FORMAT). Every line written while a request is handled is inside its `request`
//! span, which carries the request's id (`edge::observe`): in text the span prefixes the line,
//! in JSON it is in the line's `spans` list.
use tracing_subscriber::EnvFilter;

/// How log lines are written (IMPACT_LOG_FORMAT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the event's fields (its
    /// `message` among them) at the top level, and `spans`, outermost first, each with its
    /// `name` and fields.
    Json,
}

impl LogFormat {
    /// The setting's value: `text` or `json` (any case, surrounding spaces ignored).
    pub fn from_setting(raw: &str) -> anyhow::Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => anyhow::bail!("IMPACT_LOG_FORMAT={raw:?} is not text or json"),
        }
    }
}

/// Text logs (the tests' setting): `init_as(LogFormat::Text)`.
pub fn init() {
    init_as(LogFormat::Text)
}

/// Logs to stderr in `format`; RUST_LOG overrides the default level. Only the first call in a
/// process takes effect (the tests start many apps in one process).
pub fn init_as(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: ignore the error.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // The whole list, not only the innermost span: a handler's own span is inside the
            // request's, whose id must be on the line too.
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!(LogFormat::from_setting("text").ok(), Some(LogFormat::Text));
        assert_eq!(
            LogFormat::from_setting(" JSON ").ok(),
            Some(LogFormat::Json)
        );
        let e = LogFormat::from_setting("yaml").expect_err("yaml");
        assert_eq!(
            e.to_string(),
            "IMPACT_LOG_FORMAT=\"yaml\" is not text or json"
        );
    }
}
