//! Checks that span several inputs: `dependsOn` must name declared inputs and
//! must not loop (Kestra's flow validation wording).

use std::collections::{HashMap, HashSet};

use crate::input_definition::InputDefinition;

/// Problems with `dependsOn`, as (index of the input, message).
pub(super) fn input_dependencies(inputs: &[InputDefinition]) -> Vec<(usize, String)> {
    let graph: HashMap<&str, Vec<&str>> = inputs
        .iter()
        .map(|i| {
            let deps = i
                .depends_on
                .as_ref()
                .map(|d| d.inputs.iter().map(String::as_str).collect())
                .unwrap_or_default();
            (i.id.as_str(), deps)
        })
        .collect();
    let mut problems = Vec::new();
    let mut reported_cycles: HashSet<Vec<&str>> = HashSet::new();
    for (index, input) in inputs.iter().enumerate() {
        let Some(deps) = graph.get(input.id.as_str()) else {
            continue;
        };
        for dep in deps {
            if !graph.contains_key(dep) {
                problems.push((
                    index,
                    format!(
                        "Input with id '{}' depends on a non-existent input '{dep}'.",
                        input.id
                    ),
                ));
            }
        }
        if let Some(cycle) = find_cycle(input.id.as_str(), &graph) {
            // One report per cycle, on the first input of it that is declared.
            let mut key = cycle.clone();
            key.sort_unstable();
            if reported_cycles.insert(key) {
                problems.push((
                    index,
                    format!(
                        "Cycle dependency detected for input with id '{}': [{}]",
                        input.id,
                        cycle.join(", ")
                    ),
                ));
            }
        }
    }
    problems
}

/// The inputs forming a cycle reachable from `start`, in dependency order.
fn find_cycle<'a>(start: &'a str, graph: &HashMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        id: &'a str,
        graph: &HashMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut HashSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|p| *p == id) {
            return Some(path[at..].to_vec());
        }
        if !done.insert(id) {
            return None;
        }
        path.push(id);
        for dep in graph.get(id).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    visit(start, graph, &mut Vec::new(), &mut HashSet::new())
}

#[cfg(test)]
mod tests {
    use super::super::parse_flow;

    #[test]
    fn missing_and_cyclic_dependencies() {
        let src = "id: a\nnamespace: dev\ninputs:\n  - id: x\n    type: STRING\n    dependsOn:\n      inputs: [y]\n  - id: y\n    type: STRING\n    dependsOn:\n      inputs: [x]\n  - id: z\n    type: STRING\n    dependsOn:\n      inputs: [nope]\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n";
        let errors = parse_flow(src).unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "Cycle dependency detected for input with id 'x': [x, y]",
                "Input with id 'z' depends on a non-existent input 'nope'.",
            ]
        );
        assert_eq!(errors[0].path, "inputs[0].dependsOn");
        assert_eq!(errors[0].line, Some(6));
    }
}
