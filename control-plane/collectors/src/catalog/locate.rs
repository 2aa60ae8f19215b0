//! Finds the line and column of a field path (such as `projects[2].deployments[0].ports[1]`)
//! in YAML text, so semantic errors point at the place to fix, like parse errors do.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Field path -> where its value starts.
#[derive(Debug, Default)]
pub struct PathIndex {
    locations: HashMap<String, Location>,
}

impl PathIndex {
    pub fn build(text: &str) -> PathIndex {
        let mut builder = Builder::default();
        // Only called on text that serde_yaml already parsed; a failure leaves the index
        // partial, and lookups then fall back to the nearest indexed parent.
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        PathIndex {
            locations: builder.locations,
        }
    }

    /// The location of `path`, or of its nearest parent that has one.
    pub fn locate(&self, path: &str) -> Option<Location> {
        let mut path = path;
        loop {
            if let Some(location) = self.locations.get(path) {
                return Some(*location);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, String)>,
    locations: HashMap<String, Location>,
}

impl Builder {
    /// The path of the value about to start, or `None` when a mapping key comes next.
    fn value_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some((Frame::Map { key: Some(key) }, path)) if path.is_empty() => Some(key.clone()),
            Some((Frame::Map { key: Some(key) }, path)) => Some(format!("{path}.{key}")),
            Some((Frame::Map { key: None }, _)) => None,
            Some((Frame::Seq { index }, path)) => Some(format!("{path}[{index}]")),
        }
    }

    /// A value has ended: the parent moves on to its next key or item.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some((Frame::Map { key }, _)) => *key = None,
            Some((Frame::Seq { index }, _)) => *index += 1,
            None => {}
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.locations.entry(path.to_owned()).or_insert(Location {
            line: mark.line(),
            column: mark.col() + 1,
        });
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => match self.value_path() {
                Some(path) => {
                    self.record(&path, mark);
                    self.value_done();
                }
                None => {
                    if let Some((Frame::Map { key }, _)) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(path) = self.value_path() {
                    self.record(&path, mark);
                }
                self.value_done();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record(&path, mark);
                let frame = match event {
                    Event::MappingStart(..) => Frame::Map { key: None },
                    _ => Frame::Seq { index: 0 },
                };
                self.stack.push((frame, path));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_values_and_falls_back_to_parents() {
        let text = "projects:\n  - id: api\n    ports:\n      - port: 80\n      - port: 81\n";
        let index = PathIndex::build(text);
        assert_eq!(
            index.locate("projects[0].id"),
            Some(Location { line: 2, column: 9 })
        );
        assert_eq!(
            index.locate("projects[0].ports[1].port"),
            Some(Location {
                line: 5,
                column: 15
            })
        );
        // A missing field falls back to its parent mapping, on the same line.
        assert_eq!(
            index.locate("projects[0].ports[1].type").map(|l| l.line),
            Some(5)
        );
    }
}
