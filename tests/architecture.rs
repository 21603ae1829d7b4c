//! The library's modules form no circle, and its stages point down the data flow. Every
//! `crate::` and `super::` path of every file under src/ (the binary's files aside) is read,
//! re-exports followed to the module that defines the item, into the graph of "module A
//! uses module B". That graph must have no cycle, and no edge from a stage to a later one
//! ([`STAGES`]). A helper placed in the wrong home shows up as a circle or an upward use
//! naming its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root, as `gpu::context`; the root is "".
type Module = String;

/// The library's source files by module, without the binary's.
fn library_files(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut files = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(src).unwrap();
            if rel.starts_with("bin") || rel == Path::new("main.rs") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut parts: Vec<String> = rel
                    .with_extension("")
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
                    parts.pop();
                }
                files.insert(parts.join("::"), path);
            }
        }
    }
    files
}

/// The text with comments, string and character literals blanked out, so that paths in
/// docs and messages are not read as uses.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expands a use tree starting at `text` (just after `prefix::`) into full paths:
/// `a::b`, `{a, b::{c, d}}`, `*`.
fn expand(prefix: &[String], text: &str, out: &mut Vec<Vec<String>>) -> usize {
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut path = prefix.to_vec();
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            i += 1;
            loop {
                i += expand(&path, &text_from(&bytes, i), out);
                while i < bytes.len() && bytes[i].is_whitespace() {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(',') => i += 1,
                    Some('}') => {
                        i += 1;
                        return i;
                    }
                    _ => return i,
                }
                while i < bytes.len() && bytes[i].is_whitespace() {
                    i += 1;
                }
                if bytes.get(i) == Some(&'}') {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if i == start {
            out.push(path);
            return i;
        }
        path.push(bytes[start..i].iter().collect());
        if bytes.get(i) == Some(&':') && bytes.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

fn text_from(chars: &[char], at: usize) -> String {
    chars[at.min(chars.len())..].iter().collect()
}

/// Every path a file names through `crate::` or `super::`, made absolute, and the names it
/// re-exports with `pub use` (which are resolved through, not counted as uses).
fn paths_of(module: &str, code: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (mut uses, mut exports) = (Vec::new(), Vec::new());
    let here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_string).collect()
    };
    for (i, _) in code
        .match_indices("crate::")
        .chain(code.match_indices("super::"))
    {
        if i > 0 && is_ident(code[..i].chars().last().unwrap()) {
            continue;
        }
        let (prefix, rest) = if code[i..].starts_with("crate::") {
            (Vec::new(), &code[i + 7..])
        } else {
            let mut parent = here.clone();
            // A file's `super` is its parent module; `mod.rs`'s module is its directory.
            parent.pop();
            (parent, &code[i + 7..])
        };
        let mut found = Vec::new();
        expand(&prefix, rest, &mut found);
        let line_start = code[..i].rfind('\n').map_or(0, |p| p + 1);
        let statement = code[line_start..i].trim_start();
        if statement.starts_with("pub use") || statement.starts_with("pub(crate) use") {
            exports.extend(found);
        } else {
            uses.extend(found);
        }
    }
    // `pub use child::X;` in a module re-exports its own child's items.
    for line in code.lines() {
        let t = line.trim_start();
        for head in ["pub use ", "pub(crate) use "] {
            if let Some(rest) = t.strip_prefix(head)
                && !rest.starts_with("crate::")
                && !rest.starts_with("super::")
                && !rest.starts_with("std")
                && rest.chars().next().is_some_and(|c| c.is_lowercase())
            {
                let mut found = Vec::new();
                expand(&here, rest, &mut found);
                exports.extend(found);
            }
        }
    }
    (uses, exports)
}

/// The module that defines what `path` names: modules are followed as far as they go,
/// then re-exports of the module reached, to a fixed point.
fn resolve(
    path: &[String],
    modules: &BTreeSet<Module>,
    exports: &BTreeMap<(Module, String), Vec<String>>,
    depth: usize,
) -> Module {
    let mut current: Vec<String> = Vec::new();
    for (i, segment) in path.iter().enumerate() {
        let mut next = current.clone();
        next.push(segment.clone());
        if modules.contains(&next.join("::")) {
            current = next;
            continue;
        }
        if let Some(target) = exports.get(&(current.join("::"), segment.clone()))
            && depth < 16
        {
            let mut full = target.clone();
            full.extend_from_slice(&path[i + 1..]);
            return resolve(&full, modules, exports, depth + 1);
        }
        break;
    }
    current.join("::")
}

/// The circles of the graph: its strongly connected components of more than one module.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        on_stack: BTreeSet<Module>,
        found: Vec<Vec<Module>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: &Module) {
            let i = self.index.len();
            self.index.insert(v.clone(), i);
            self.low.insert(v.clone(), i);
            self.stack.push(v.clone());
            self.on_stack.insert(v.clone());
            let next: Vec<Module> = self.edges.get(v).into_iter().flatten().cloned().collect();
            for w in &next {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.clone(), low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.clone(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = &w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// The "uses" graph of the library's modules under `src`.
fn module_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = library_files(src);
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let mut uses = BTreeMap::new();
    let mut exports = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    for (module, path) in &files {
        let code = code_only(&std::fs::read_to_string(path).unwrap());
        for (at, _) in code.match_indices("#[cfg(test)]") {
            let rest = code[at + 12..].trim_start();
            if let Some(name) = rest.strip_prefix("mod ")
                && let Some(end) = name.find(|c: char| !is_ident(c))
                && name[end..].trim_start().starts_with(';')
            {
                let child = if module.is_empty() {
                    name[..end].to_string()
                } else {
                    format!("{module}::{}", &name[..end])
                };
                test_only.insert(child);
            }
        }
    }
    for (module, path) in &files {
        if test_only.contains(module) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(path).unwrap());
        // Tests (a `#[cfg(test)] mod tests { … }` at the end of a file) are not the
        // library's structure.
        let code = match code.find("#[cfg(test)]\nmod tests") {
            Some(at) => &code[..at],
            None => &code[..],
        };
        let (u, e) = paths_of(module, code);
        for target in e {
            if let Some(name) = target.last() {
                exports.insert((module.clone(), name.clone()), target.clone());
            }
        }
        uses.insert(module.clone(), u);
    }
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, paths) in uses {
        let out = edges.entry(module.clone()).or_default();
        for path in paths {
            let target = resolve(&path, &modules, &exports, 0);
            // The root only re-exports, so what it names is resolved through. A module's use
            // of what its parent directory's `mod.rs` defines is no edge: a directory is
            // one stage whose `mod.rs` holds the shared pieces and hands work to its files.
            let ancestor = module.starts_with(&format!("{target}::"));
            if target != module && !target.is_empty() && !ancestor {
                out.insert(target);
            }
        }
    }
    edges
}

#[test]
fn library_modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = module_graph(&src);
    assert!(edges.len() > 10, "read only {} modules", edges.len());
    let found = circles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|c| {
            let links: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} → {b}"))
                })
                .collect();
            format!("{{{}}}: {}", c.join(", "), links.join(", "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "module circles (move the helper that closes each to the lower module):\n{}",
        described.join("\n")
    );
}

#[test]
fn the_circle_check_finds_a_planted_circle() {
    let dir = std::env::temp_dir().join(format!("softmax-regression-arch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("gpu")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write(
        "lib.rs",
        "pub mod a;\npub mod b;\npub mod gpu;\npub use a::Thing;\n",
    );
    write(
        "a.rs",
        "use crate::gpu::Kernel; // crate::b in a comment\npub struct Thing;\n",
    );
    write("b.rs", "pub fn f() -> &'static str { \"crate::a\" }\n");
    write("gpu/mod.rs", "mod kernels;\npub use kernels::Kernel;\n");
    write("gpu/kernels.rs", "use crate::Thing;\npub struct Kernel;\n");
    let edges = module_graph(&dir);
    assert_eq!(edges["a"], BTreeSet::from(["gpu::kernels".to_string()]));
    assert!(
        edges["b"].is_empty(),
        "a path in a string or comment was read as a use"
    );
    assert_eq!(
        circles(&edges),
        vec![vec!["a".to_string(), "gpu::kernels".to_string()]]
    );
}

/// The stages in the order data flows through them (../shared/ARCHITECTURE.md): each may
/// use the stages before it, never one after it. The base modules share the first rank.
const STAGES: &[&[&str]] = &[
    &[
        "error", "util", "params", "rng", "vectors", "step", "output",
    ],
    &["formats"],
    &["data"],
    &["gpu"],
    &["objective", "ranks"],
    &["optim"],
    &["model"],
    &["train"],
    &["fuzzing"],
];

fn stage_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or_default();
    STAGES.iter().position(|stage| stage.contains(&top))
}

/// Every edge from a stage to a later one, as "a → b".
fn upward_uses(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let mut found = Vec::new();
    for (a, targets) in edges {
        for b in targets {
            if let (Some(from), Some(to)) = (stage_of(a), stage_of(b))
                && to > from
            {
                found.push(format!("{a} → {b}"));
            }
        }
    }
    found
}

#[test]
fn every_library_module_has_a_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let unplaced: Vec<Module> = library_files(&src)
        .into_keys()
        .filter(|m| !m.is_empty() && stage_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no stage of tests/architecture.rs's STAGES: {unplaced:?}"
    );
}

#[test]
fn stages_use_only_earlier_stages() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = upward_uses(&module_graph(&src));
    assert!(
        found.is_empty(),
        "a stage uses a later one (move the helper down to the stage that needs it first):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_stage_check_finds_an_upward_use() {
    let edges = BTreeMap::from([
        (
            "gpu::chunks".to_string(),
            BTreeSet::from(["objective::reference".to_string(), "error".to_string()]),
        ),
        (
            "train".to_string(),
            BTreeSet::from(["gpu::chunks".to_string()]),
        ),
    ]);
    assert_eq!(
        upward_uses(&edges),
        vec!["gpu::chunks → objective::reference".to_string()]
    );
}
