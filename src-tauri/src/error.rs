//! The one error shape the webview ever sees.

use serde::Serialize;

/// Error returned by every command: `{ code, message, details }`.
///
/// `code` is stable and machine-readable; the UI translates it through the
/// catalog key `error.<code>` and falls back to `message` (in the user's
/// language) when the catalog has no entry. `details` carries structured
/// context (for a validation error, `details.errors` lists every field's
/// problem with its own code and message) or `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppError {
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl AppError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An unexpected failure inside the app (not the user's input).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// An API error, rendered in `lang`.
    pub fn from_api(e: &shouhu_api::Error, lang: shouhu_api::Lang) -> Self {
        let b = e.body(lang);
        let details = (!b.details.is_null()).then_some(b.details);
        AppError {
            code: b.code,
            message: b.message,
            details,
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AppError {}

impl From<tauri::Error> for AppError {
    fn from(error: tauri::Error) -> Self {
        Self::internal(error.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_code_message_details() {
        let plain = serde_json::to_value(AppError::internal("boom")).unwrap();
        assert_eq!(
            plain,
            json!({"code": "internal", "message": "boom", "details": null})
        );

        let detailed = AppError::new("child.id_number_invalid", "bad checksum")
            .with_details(json!({"field": "idNumber"}));
        let value = serde_json::to_value(&detailed).unwrap();
        assert_eq!(value["details"]["field"], "idNumber");
        assert_eq!(
            detailed.to_string(),
            "child.id_number_invalid: bad checksum"
        );
    }

    #[test]
    fn api_errors_keep_code_and_field_details() {
        let e = shouhu_api::Error::Forbidden {
            role: "teacher",
            action: "x",
        };
        let zh = AppError::from_api(&e, shouhu_api::Lang::ZhCn);
        assert_eq!(zh.code, "auth.forbidden");
        assert_eq!(zh.message, "您的角色无权进行此操作");
        assert_eq!(zh.details.unwrap()["role"], "teacher");
    }
}
