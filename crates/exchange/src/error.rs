//! Errors that abort a whole import or export (a bad *line* is not one of
//! them: it is reported and skipped).

use serde_json::Value;
use shouhu_core::{ErrorBody, Lang};
use shouhu_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("cannot read the input: {0}")]
    Read(String),
    #[error("cannot write the output: {0}")]
    Write(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExchangeError {
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::Read(_) => "io.read_failed",
            ExchangeError::Write(_) => "io.write_failed",
            ExchangeError::Store(e) => e.code(),
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (ExchangeError::Read(e), Lang::ZhCn) => format!("无法读取文件：{e}"),
            (ExchangeError::Write(e), Lang::ZhCn) => format!("无法写入文件：{e}"),
            (ExchangeError::Store(e), l) => e.message(l),
            (other, Lang::En) => other.to_string(),
        }
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.message(lang),
            details: match self {
                ExchangeError::Store(e) => e.details(lang),
                _ => Value::Null,
            },
        }
    }
}
