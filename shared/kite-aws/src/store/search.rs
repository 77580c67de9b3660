//! Execution search over the namespace index (`gsi1`: `EXECNS#{ns}` / `{startMs}#{id}`).
//!
//! Sorted by start date (the default, and what the UI and Kestra's clients ask for), a
//! search reads each namespace's partition in that order, merges them, and stops once the
//! page is full and its total counted within a budget, so that asking for the last
//! executions of a busy namespace reads a few index pages, not all of it. The cheap
//! filters (flow, state, parent execution) run in DynamoDB as a filter expression; free
//! text and labels need the decoded execution.
//!
//! The flow and trigger searches share with it the free text, the sort of decoded results
//! and the cut of one page; other orders than the start date read the whole date range of
//! the index, as does the list of unfinished executions.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use kite_core::execution::Execution;
use kite_engine::ports::{ExecutionQuery, Page, Sort, StoreError};

use super::encoding::{names, values};
use super::AwsStore;
use crate::items::*;

/// How much of the index one execution search may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchBudget {
    /// Index items read per request: small enough that the first page of a search costs
    /// a few read units, large enough that counting its total takes few round trips.
    pub query_limit: i32,
    /// Once the page is full, index items read further to count the total. Beyond it
    /// the total says "at least one more page" (Kestra's clients use it for paging).
    pub count_budget: usize,
    /// Index items one search reads at most: a filter that matches little in a huge
    /// namespace answers what it found instead of reading until API Gateway gives up.
    pub read_limit: usize,
}

impl Default for SearchBudget {
    fn default() -> Self {
        SearchBudget {
            query_limit: 500,
            count_budget: 2_000,
            read_limit: 20_000,
        }
    }
}

/// A filter expression with its attribute names and values.
type FilterExpression = (String, HashMap<String, String>, HashMap<String, AttributeValue>);

/// A search's free text (`q`), lower-cased for a case-insensitive match; `None` when
/// absent or empty.
pub(super) fn search_text(q: &Option<String>) -> Option<String> {
    q.as_ref().filter(|q| !q.is_empty()).map(|q| q.to_lowercase())
}

/// The order of a search: Kestra's sort fields mapped to stored ones; default newest first.
pub(super) fn execution_sort(requested: &[Sort]) -> Vec<Sort> {
    let field = |f: &str| -> Option<&'static str> {
        Some(match f {
            "state.startDate" | "startDate" => "start",
            "state.endDate" | "endDate" => "end",
            "id" => "id",
            "namespace" => "namespace",
            "flowId" => "flowId",
            "state.current" | "state" => "state",
            _ => return None,
        })
    };
    let sort: Vec<Sort> = requested
        .iter()
        .filter_map(|s| {
            field(&s.field).map(|f| Sort {
                field: f.to_string(),
                descending: s.descending,
            })
        })
        .collect();
    if !sort.is_empty() {
        return sort;
    }
    ["start", "id"]
        .into_iter()
        .map(|f| Sort {
            field: f.into(),
            descending: true,
        })
        .collect()
}

/// `Some(descending)` when `sort` is the index's own order: start date, then id, one way.
pub(super) fn start_date_order(sort: &[Sort]) -> Option<bool> {
    match sort {
        [start] if start.field == "start" => Some(start.descending),
        [start, id] if start.field == "start" && id.field == "id" && id.descending == start.descending => {
            Some(start.descending)
        }
        _ => None,
    }
}

/// A search's filters: those on item attributes, and those that need the execution.
pub(super) struct ExecutionFilter<'q> {
    query: &'q ExecutionQuery,
    text: Option<String>,
}

impl<'q> ExecutionFilter<'q> {
    pub(super) fn of(query: &'q ExecutionQuery) -> Self {
        let text = search_text(&query.q);
        ExecutionFilter { query, text }
    }

    /// The filters on the item's own attributes (the same as `expression`, plus the
    /// namespace prefix), checked before decoding the body.
    pub(super) fn keeps_item(&self, item: &Item) -> bool {
        let q = self.query;
        let attr = |name: &str| opt_s(item, name);
        !get_bool(item, "deleted")
            && q.flow_id.as_deref().is_none_or(|f| attr("flowId") == Some(f))
            && (q.states.is_empty() || q.states.iter().any(|st| attr("state") == Some(st.as_str())))
            && q.trigger_execution_id
                .as_deref()
                .is_none_or(|te| attr("triggerExecutionId") == Some(te))
            && q.namespace
                .as_deref()
                .is_none_or(|prefix| attr("namespace").is_some_and(|ns| namespace_matches(ns, prefix)))
    }

    /// Whether free text and labels are asked for: only they need the decoded execution.
    fn needs_execution(&self) -> bool {
        self.text.is_some() || !self.query.labels.is_empty()
    }

    pub(super) fn keeps(&self, e: &Execution) -> bool {
        self.text.as_deref().is_none_or(|text| {
            format!("{} {} {}", e.id, e.namespace, e.flow_id)
                .to_lowercase()
                .contains(text)
        }) && self.query.labels.iter().all(|l| e.labels.contains(l))
    }

    /// The attribute filters as a DynamoDB filter expression, so that pages carry matches only.
    fn expression(&self) -> Option<FilterExpression> {
        let q = self.query;
        let mut parts = Vec::new();
        let mut names = HashMap::new();
        let mut vals = HashMap::new();
        if let Some(flow) = &q.flow_id {
            parts.push("#f = :f".to_string());
            names.insert("#f".into(), "flowId".into());
            vals.insert(":f".into(), AttributeValue::S(flow.clone()));
        }
        if !q.states.is_empty() {
            let keys: Vec<String> = (0..q.states.len()).map(|i| format!(":s{i}")).collect();
            parts.push(format!("#st IN ({})", keys.join(", ")));
            names.insert("#st".into(), "state".into());
            for (k, st) in keys.into_iter().zip(&q.states) {
                vals.insert(k, AttributeValue::S(st.as_str().to_string()));
            }
        }
        if let Some(parent) = &q.trigger_execution_id {
            parts.push("#te = :te".to_string());
            names.insert("#te".into(), "triggerExecutionId".into());
            vals.insert(":te".into(), AttributeValue::S(parent.clone()));
        }
        (!parts.is_empty()).then(|| (parts.join(" AND "), names, vals))
    }
}

/// One namespace's partition, read lazily in the search's order.
struct Cursor {
    namespace: String,
    buffer: VecDeque<Item>,
    start: Option<Item>,
    done: bool,
}

impl AwsStore {
    pub(super) async fn search_by_start_date(
        &self,
        query: &ExecutionQuery,
        descending: bool,
    ) -> Result<Page<Execution>, StoreError> {
        let filter = ExecutionFilter::of(query);
        let expression = filter.expression();
        let (lo, hi) = start_bounds(query.start_date, query.end_date);
        let mut cursors: Vec<Cursor> = self
            .flow_namespaces(query.namespace.as_deref())
            .await?
            .into_iter()
            .map(|namespace| Cursor {
                namespace,
                buffer: VecDeque::new(),
                start: None,
                done: false,
            })
            .collect();
        let offset = query.pagination.offset() as usize;
        let end = offset + query.pagination.size as usize;
        let mut results = Vec::new();
        let (mut matched, mut read) = (0usize, 0usize);
        let mut page_full_at = None;
        let budget = self.search_budget;
        loop {
            // Every partition shows its next match (or is read to its end) before one is
            // taken: a page filtered down to nothing does not let a later item jump ahead.
            for c in cursors.iter_mut() {
                while c.buffer.is_empty() && !c.done && read < budget.read_limit {
                    read += self
                        .read_page(c, descending, &lo, &hi, expression.as_ref())
                        .await?;
                }
            }
            let exhausted = cursors.iter().all(|c| c.buffer.is_empty() && c.done);
            let out_of_budget = read >= budget.read_limit
                || page_full_at.is_some_and(|at: usize| read >= at + budget.count_budget);
            if exhausted || out_of_budget {
                let total = if exhausted || matched < end {
                    matched
                } else {
                    // More may match: enough for the next page link.
                    matched.max(end + 1)
                };
                return Ok(Page {
                    results,
                    total: total as u64,
                });
            }
            // The cursor whose next item comes first in the search's order.
            let heads = cursors.iter().enumerate().filter_map(|(i, c)| {
                let key = c.buffer.front().and_then(|item| opt_s(item, "gsi1sk"))?;
                Some((i, key))
            });
            let next = if descending {
                heads.max_by_key(|&(_, key)| key)
            } else {
                heads.min_by_key(|&(_, key)| key)
            }
            .map(|(i, _)| i);
            let Some(item) = next.and_then(|i| cursors[i].buffer.pop_front()) else {
                continue;
            };
            if !filter.keeps_item(&item) {
                continue;
            }
            let in_page = (offset..end).contains(&matched);
            if filter.needs_execution() || in_page {
                let e = self.execution_from_item(&item).await?;
                if !filter.keeps(&e) {
                    continue;
                }
                if in_page {
                    results.push(e);
                }
            }
            matched += 1;
            if matched == end {
                page_full_at = Some(read);
            }
        }
    }

    /// Reads the next page of `c`'s partition into its buffer; returns the items DynamoDB read.
    async fn read_page(
        &self,
        c: &mut Cursor,
        descending: bool,
        lo: &str,
        hi: &str,
        filter: Option<&FilterExpression>,
    ) -> Result<usize, StoreError> {
        let mut attribute_names = names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]);
        let mut attribute_values = values(vec![
            (":p", AttributeValue::S(exec_gsi_pk(&c.namespace))),
            (":lo", AttributeValue::S(lo.to_string())),
            (":hi", AttributeValue::S(hi.to_string())),
        ]);
        let mut request = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
            .scan_index_forward(!descending)
            .limit(self.search_budget.query_limit)
            .set_exclusive_start_key(c.start.take());
        if let Some((expression, n, v)) = filter {
            attribute_names.extend(n.clone());
            attribute_values.extend(v.clone());
            request = request.filter_expression(expression);
        }
        let page = request
            .set_expression_attribute_names(Some(attribute_names))
            .set_expression_attribute_values(Some(attribute_values))
            .send()
            .await
            .map_err(sdk)?;
        c.buffer.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            // A page that read nothing cannot be followed by one that reads something.
            Some(k) if !k.is_empty() && page.scanned_count > 0 => c.start = Some(k),
            _ => c.done = true,
        }
        Ok(page.scanned_count.max(0) as usize)
    }
}

/// The index's sort key bounds for a start date range (inclusive).
fn start_bounds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> (String, String) {
    let lo = from.map(padded_ms).unwrap_or_else(|| "0".into());
    // Ids are base62 or Kestra-style ids, all below `~`.
    let hi = format!(
        "{}#~",
        to.map(padded_ms).unwrap_or_else(|| "9999999999999999".into())
    );
    (lo, hi)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SortKey {
    Num(i64),
    Text(String),
}

pub(super) fn sort_by_fields<T>(items: &mut [T], sort: &[Sort], key: impl Fn(&T, &str) -> Option<SortKey>) {
    items.sort_by(|a, b| {
        for s in sort {
            let (ka, kb) = (key(a, &s.field), key(b, &s.field));
            if ka.is_none() && kb.is_none() {
                continue;
            }
            let o = ka.cmp(&kb);
            let o = if s.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

pub(super) fn page<T>(mut all: Vec<T>, pagination: kite_engine::ports::Pagination) -> Page<T> {
    let total = all.len() as u64;
    let start = (pagination.offset() as usize).min(all.len());
    let end = start.saturating_add(pagination.size as usize).min(all.len());
    let results = all.drain(start..end).collect();
    Page { results, total }
}

impl AwsStore {
    /// Namespaces that have (or had) flows: executions are only ever created for flows.
    async fn flow_namespaces(&self, prefix: Option<&str>) -> Result<Vec<String>, StoreError> {
        let items = self.flow_latest_items(prefix).await?;
        let mut namespaces: Vec<String> = items
            .iter()
            .filter_map(|i| opt_s(i, "namespace").map(str::to_string))
            .filter(|ns| prefix.is_none_or(|p| namespace_matches(ns, p)))
            .collect();
        if let Some(p) = prefix {
            namespaces.push(p.to_string());
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
    }

    /// Execution items of the namespaces under `prefix`, within the start date bounds.
    pub(super) async fn execution_items(
        &self,
        prefix: Option<&str>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<Item>, StoreError> {
        let (lo, hi) = start_bounds(from, to);
        let mut out = Vec::new();
        for ns in self.flow_namespaces(prefix).await? {
            out.extend(
                self.query_all(
                    Some("gsi1"),
                    "#p = :p AND #s BETWEEN :lo AND :hi",
                    names(&[("#p", "gsi1pk"), ("#s", "gsi1sk")]),
                    values(vec![
                        (":p", s(exec_gsi_pk(&ns))),
                        (":lo", s(lo.clone())),
                        (":hi", s(hi.clone())),
                    ]),
                    None,
                    false,
                )
                .await?,
            );
        }
        Ok(out)
    }
}
