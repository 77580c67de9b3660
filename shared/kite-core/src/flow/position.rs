//! Where each field of a YAML document is, so errors can name a line and column.
//! serde_yaml's values keep no positions; yaml-rust2's marked events do.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path (`tasks[0].id`) → (line, column), both 1-based, per document.
pub type Positions = HashMap<String, (usize, usize)>;

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Collector {
    /// Per document: its positions, and whether it holds anything (empty
    /// documents, e.g. after a trailing `---`, are skipped like serde_yaml's nulls).
    documents: Vec<(Positions, bool)>,
    stack: Vec<Frame>,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Collector {
    /// The path of the node starting now; for a map key, records the key itself.
    fn node_path(&mut self, scalar: Option<&str>, mark: Marker) -> Option<String> {
        let at = (mark.line(), mark.col() + 1);
        let (doc, non_null) = self.documents.last_mut()?;
        match self.stack.last_mut() {
            None => {
                *non_null = !matches!(scalar, Some("" | "~" | "null" | "Null" | "NULL"));
                Some(String::new())
            }
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                // A mapping item is placed at its first key (its start mark
                // is not where a reader looks).
                if scalar != Some("{}") {
                    doc.entry(p.clone()).or_insert(at);
                }
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    // This node is a key.
                    doc.entry(path.clone()).or_insert(at);
                    let k = scalar.unwrap_or("?").to_string();
                    let p = child(path, &k);
                    doc.entry(p).or_insert(at);
                    *key = Some(k);
                    None
                }
                Some(k) => {
                    let p = child(path, &k);
                    doc.entry(p.clone()).or_insert(at);
                    Some(p)
                }
            },
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => {
                self.documents.push((Positions::new(), false));
                self.stack.clear();
            }
            Event::Scalar(value, ..) => {
                self.node_path(Some(&value), mark);
            }
            Event::Alias(_) => {
                self.node_path(Some("*"), mark);
            }
            Event::MappingStart(..) => {
                let path = self.node_path(Some("{}"), mark).unwrap_or_default();
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(Some("[]"), mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Positions of every field, one map per non-empty YAML document. Syntax
/// errors yield what was read so far (serde_yaml reports the error itself).
pub fn positions(source: &str) -> Vec<Positions> {
    let mut collector = Collector::default();
    let mut parser = Parser::new_from_str(source);
    let _ = parser.load(&mut collector, true);
    collector
        .documents
        .into_iter()
        .filter(|(_, non_null)| *non_null)
        .map(|(p, _)| p)
        .collect()
}

/// The position of `path`, or of its nearest ancestor that has one.
pub fn lookup(positions: &Positions, path: &str) -> Option<(usize, usize)> {
    let mut p = path.to_string();
    loop {
        if let Some(at) = positions.get(&p) {
            return Some(*at);
        }
        match p.rfind(['.', '[']) {
            Some(cut) => p.truncate(cut),
            // A missing top-level property: point at the flow itself.
            None if !p.is_empty() => p.clear(),
            None => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_have_lines() {
        let src = "id: a\nnamespace: b\ntasks:\n  - id: t1\n    type: x\n  - id: t2\n    type: y\n";
        let docs = positions(src);
        let p = &docs[0];
        assert_eq!(p.get("id"), Some(&(1, 1)));
        assert_eq!(p.get("tasks[1].id"), Some(&(6, 5)));
        assert_eq!(lookup(p, "tasks[1].nope"), Some((6, 5)));
    }

    #[test]
    fn empty_documents_are_skipped() {
        let docs = positions("---\nid: a\n---\n---\nid: b\n---\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].get("id"), Some(&(5, 1)));
    }
}
