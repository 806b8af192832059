//! The layers of STYLE.md, checked: a module may name only modules of its own
//! layer or below (`use crate::…` and `crate::…` paths in production code; test
//! files and `#[cfg(test)]` tails are skipped), no output module names the web,
//! and the modules form no cycle. Adding a top-level module means placing it here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom to top.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "ground",
        &[
            "meter",
            "line_protocol",
            "buckets",
            "clock",
            "config",
            "password",
            "words",
            "tls_client",
            "influxql",
            "http_client",
            "tariff",
        ],
    ),
    ("store", &["store"]),
    ("figures", &["figures", "draws", "compare"]),
    ("inputs", &["ingest", "transfer"]),
    ("logic", &["alert", "report"]),
    ("out", &["web", "forward", "mqtt", "notify", "systemd"]),
    ("app", &["app", "demo"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// `crate::x` names in the production part of every file under `path`.
fn names(path: &Path, out: &mut BTreeSet<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name == "tests" || name.contains("test") {
                continue;
            }
            names(&p, out);
        }
        return;
    }
    if path.extension().is_none_or(|e| e != "rs") {
        return;
    }
    let text = std::fs::read_to_string(path).unwrap();
    let production = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    for (i, _) in production.match_indices("crate::") {
        let rest = &production[i + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if matches!(stem.as_str(), "lib" | "main") || stem.contains("test") {
            continue;
        }
        let mut deps = BTreeSet::new();
        names(&p, &mut deps);
        deps.remove(&stem);
        graph.insert(stem, deps);
    }
    graph
}

#[test]
fn every_module_has_a_layer_and_names_only_its_layer_or_below() {
    let graph = graph();
    let mut problems = Vec::new();
    for (module, deps) in &graph {
        let Some(own) = layer_of(module) else {
            problems.push(format!("src/{module} has no layer in src/layers_tests.rs"));
            continue;
        };
        for dep in deps {
            match layer_of(dep) {
                Some(l) if l > own => problems.push(format!(
                    "{module} ({}) names {dep} ({}), a higher layer",
                    LAYERS[own].0, LAYERS[l].0
                )),
                _ => {}
            }
        }
        if LAYERS[own].0 == "out" && module != "web" && deps.contains("web") {
            problems.push(format!(
                "{module} names web: outputs read figures and the store, never the web"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The files of one directory module (`src/web/…`) and the siblings each names
/// (`super::x` or `crate::web::x`); a nested directory counts as one sibling.
fn submodule_graph(module: &str) -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(module);
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if stem == "mod" || stem.contains("test") {
            continue;
        }
        let files: Vec<std::path::PathBuf> = if p.is_dir() {
            std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|f| f.extension().is_some_and(|e| e == "rs"))
                .collect()
        } else if p.extension().is_some_and(|e| e == "rs") {
            vec![p.clone()]
        } else {
            continue;
        };
        let mut deps = BTreeSet::new();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if name.contains("test") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let production = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let crate_path = format!("crate::{module}::");
            // `super::` in a nested directory's file names that directory, not `module`.
            let prefixes: Vec<&str> = if p.is_dir() {
                vec![crate_path.as_str()]
            } else {
                vec!["super::", crate_path.as_str()]
            };
            for prefix in prefixes {
                for (i, _) in production.match_indices(prefix) {
                    let name: String = production[i + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != stem {
                        deps.insert(name);
                    }
                }
            }
        }
        graph.insert(stem, deps);
    }
    graph
}

#[test]
fn the_modules_form_no_cycle() {
    let mut problems = Vec::new();
    if let Some(cycle) = find_cycle(&graph()) {
        problems.push(format!("a module cycle: {}", cycle.join(" -> ")));
    }
    for module in [
        "alert",
        "config",
        "forward",
        "ingest",
        "line_protocol",
        "mqtt",
        "notify",
        "store",
        "web",
    ] {
        if let Some(cycle) = find_cycle(&submodule_graph(module)) {
            problems.push(format!("a cycle inside {module}/: {}", cycle.join(" -> ")));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search with colours: grey on the stack, black done.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match colour.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        colour.insert(m, 1);
        path.push(m);
        for dep in graph.get(m).into_iter().flatten() {
            if graph.contains_key(dep) {
                if let Some(c) = visit(dep, graph, colour, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        colour.insert(m, 2);
        None
    }
    let mut colour = BTreeMap::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut colour, &mut Vec::new()))
}
