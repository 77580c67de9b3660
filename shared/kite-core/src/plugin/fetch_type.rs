//! Kestra's `fetchType` (`io.kestra.core.models.tasks.common.FetchType`): what a task
//! that reads rows (DynamoDB `Query`/`Scan`, the SQL tasks) outputs of them.

use super::props::Props;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchType {
    /// `rows` and `size`.
    Fetch,
    /// `row` (the first) and `size`.
    FetchOne,
    /// `uri` of an Ion file of the rows (one value a line) and `size`.
    Store,
    /// Nothing.
    None,
}

impl Props<'_> {
    /// `fetchType`, or `default` when absent (each task type has its own).
    pub(crate) fn fetch_type(&self, default: FetchType) -> Result<FetchType, String> {
        Ok(match self.rendered("fetchType")?.as_deref().map(str::trim) {
            None => default,
            Some("STORE") => FetchType::Store,
            Some("FETCH") => FetchType::Fetch,
            Some("FETCH_ONE") => FetchType::FetchOne,
            Some("NONE") => FetchType::None,
            Some(other) => {
                return Err(format!(
                    "Invalid fetchType '{other}': expected one of FETCH, FETCH_ONE, STORE, NONE"
                ))
            }
        })
    }
}
