//! No crate has an import cycle between its modules (issue 19, "Cycles inside
//! crates"): each file has one job, and the arrows between files point one
//! way.
//!
//! For every crate root of every workspace package (`src/lib.rs`,
//! `src/main.rs`, each `src/bin/X.rs` and `src/bin/X/main.rs`) this builds the
//! graph of its file-level modules by following `mod` declarations from the
//! root, as rustc does (`a/b.rs` or `a/b/mod.rs` is module `a::b`; an inline
//! `mod x { .. }` belongs to the file that holds it). Each file is parsed with
//! `syn`; an edge `m -> n` exists when `m`'s code uses something that lives in
//! `n`:
//!
//! - paths in expressions, types, patterns and macro arguments, resolved from
//!   the module they are written in: `crate::a::f`, `super::Thing`, `b::C`
//!   through a child module or an import, and a bare name (`Foo`, `helper`)
//!   that is an import, a glob import (`use crate::*`, `use super::*`,
//!   `use crate::a::*`: the name is looked up among the items and re-exports
//!   of the glob's module) or a re-export of the module itself;
//! - `use` items, nested groups included (`use crate::{a::{B, C}, d};`): an
//!   import is there to be used (a trait's methods use it without naming
//!   it);
//! - names are resolved through imports and re-exports, transitively:
//!   `pub use a::Foo;` in `lib.rs` makes `crate::Foo` point to module `a`,
//!   where `Foo` is defined.
//!
//! How the crate is laid out is no use of code, and gives no edge: a `mod x;`
//! declaration, a re-export of what a descendant defines or passes on
//! (`pub use a::Foo;` or `pub(crate) use self::b::*;` in a parent), and a
//! `use` that only brings an ancestor module into scope (`use super::*;`: the
//! names taken through it count one by one). Everything else counts, between
//! any two files: a child using `super::Thing` where the parent defines
//! `Thing`, while the parent's own code uses the child, is a two-way
//! dependency like any other. Items only compiled for tests (`#[cfg(test)]`,
//! `#[test]`) are left out. Any strongly connected component of more than one
//! file is a cycle, reported with its files and one example path per edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use proc_macro2::{Spacing, Span, TokenStream, TokenTree};
use serde_json::Value;
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, Ident, Item, Meta, Token, UseTree};

/// A crate's Rust sources: the path from the package directory with `/`
/// separators (`src/lib.rs`) to the file's text.
pub(crate) type Sources = BTreeMap<String, String>;

/// How deep name resolution follows imports before giving up (a guard against
/// imports that refer to each other).
const MAX_DEPTH: usize = 24;

/// Edges that close a module cycle which tidy tolerates for now, as
/// (package, from file, to file): each would lie in code that other work in
/// progress owns. The check takes them out of the graph before it looks for
/// cycles, so a file that merely joins a known tangle fails nothing, while a
/// new edge that closes a cycle does. tidy prints them on every run and fails
/// once one no longer closes a cycle, so that its entry is removed: the list
/// only shrinks.
///
/// It is empty: the last entries were parents holding shared definitions
/// while running their children (lift-cli's `lib.rs` and `demo/mod.rs`, the
/// fake pulumi's `main.rs` and `engine/mod.rs`, xtask's `main.rs`), untied by
/// moving those definitions into files of their own.
const KNOWN_CYCLES: &[(&str, &str, &str)] = &[];

/// What the check found in the workspace.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Cycles and unparsable files, one message each: tidy fails on these.
    pub(crate) problems: Vec<String>,
    /// The cycles closed by edges of [`KNOWN_CYCLES`], one message per crate.
    pub(crate) tolerated: Vec<String>,
}

/// Cycles (or an unparsable file) in one crate of a package.
#[derive(Debug)]
pub(crate) struct Finding {
    package: String,
    /// The known edges, as `(from, to)` files, that close the cycles of a
    /// tolerated finding; empty for a problem.
    known: Vec<(String, String)>,
    message: String,
}

/// Checks every package of a `cargo metadata` document, reading each
/// package's `src/` from disk.
pub(crate) fn check_workspace(metadata: &Value) -> anyhow::Result<Report> {
    let mut findings = Vec::new();
    let packages = metadata["packages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("<unnamed>");
        let Some(dir) = package["manifest_path"]
            .as_str()
            .and_then(|manifest| Path::new(manifest).parent())
        else {
            bail!("cargo metadata gives {name} no manifest_path");
        };
        let sources = read_sources(dir)?;
        findings.extend(check_package(name, &sources, KNOWN_CYCLES));
    }
    Ok(judge(findings, KNOWN_CYCLES))
}

/// Sorts findings into problems and tolerated cycles; a `known` edge that no
/// longer closes a cycle is a problem too (its entry must go).
fn judge(findings: Vec<Finding>, known: &[(&str, &str, &str)]) -> Report {
    let mut report = Report::default();
    let mut seen = vec![false; known.len()];
    for finding in findings {
        if finding.known.is_empty() {
            report.problems.push(finding.message);
            continue;
        }
        for (from, to) in &finding.known {
            for (index, entry) in known.iter().enumerate() {
                if *entry == (finding.package.as_str(), from.as_str(), to.as_str()) {
                    seen[index] = true;
                }
            }
        }
        report.tolerated.push(finding.message);
    }
    for ((package, from, to), seen) in known.iter().zip(seen) {
        if !seen {
            report.problems.push(format!(
                "{package}: the known edge {from} -> {to} no longer closes a module cycle: remove it from KNOWN_CYCLES in xtask/src/module_cycles.rs"
            ));
        }
    }
    report
}

/// Reads every `.rs` file under `dir/src`.
fn read_sources(dir: &Path) -> anyhow::Result<Sources> {
    let mut sources = Sources::new();
    let mut pending = vec![dir.join("src")];
    while let Some(current) = pending.pop() {
        if !current.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&current)
            .with_context(|| format!("cannot list {}", current.display()))?
        {
            let path = entry
                .with_context(|| format!("cannot list {}", current.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path
                    .strip_prefix(dir)
                    .with_context(|| format!("{} is outside {}", path.display(), dir.display()))?;
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                sources.insert(key, text);
            }
        }
    }
    Ok(sources)
}

/// The crate roots among `sources`: `src/lib.rs`, `src/main.rs`, `src/bin/X.rs`
/// and `src/bin/X/main.rs`.
fn crate_roots(sources: &Sources) -> Vec<&str> {
    sources
        .keys()
        .map(String::as_str)
        .filter(|path| {
            let Some(rest) = path.strip_prefix("src/") else {
                return false;
            };
            match rest.split('/').collect::<Vec<_>>().as_slice() {
                ["lib.rs" | "main.rs"] => true,
                ["bin", file] => file.ends_with(".rs"),
                ["bin", _, "main.rs"] => true,
                _ => false,
            }
        })
        .collect()
}

/// The module cycles (and unparsable files) of the package `package` made of
/// `sources`, once the edges of `known` (for any package) that belong to it are
/// taken out; the cycles those close make one tolerated finding per crate.
pub(crate) fn check_package(
    package: &str,
    sources: &Sources,
    known: &[(&str, &str, &str)],
) -> Vec<Finding> {
    let known: Vec<(&str, &str)> = known
        .iter()
        .filter(|(p, _, _)| *p == package)
        .map(|&(_, from, to)| (from, to))
        .collect();
    let mut findings = Vec::new();
    for root in crate_roots(sources) {
        match Graph::load(sources, root) {
            Ok(graph) => {
                let found = graph.cycles(&known);
                for message in found.cycles {
                    findings.push(Finding {
                        package: package.to_owned(),
                        known: Vec::new(),
                        message: format!("{package} ({root}): {message}"),
                    });
                }
                if !found.tolerated.is_empty() {
                    let mut message = format!(
                        "{package} ({root}): module cycles closed by these edges (move code so that the arrows point one way):"
                    );
                    let mut edges = Vec::new();
                    for (from, to, line) in found.tolerated {
                        message.push_str(&line);
                        edges.push((from, to));
                    }
                    findings.push(Finding {
                        package: package.to_owned(),
                        known: edges,
                        message,
                    });
                }
            }
            Err(problem) => findings.push(Finding {
                package: package.to_owned(),
                known: Vec::new(),
                message: format!("{package}: {problem}"),
            }),
        }
    }
    findings
}

/// A module, file-level or inline.
#[derive(Debug, Default)]
struct Module {
    /// The index of the file-level module that holds it (itself if it is one).
    file: usize,
    parent: Option<usize>,
    /// Child modules by name.
    children: BTreeMap<String, usize>,
    /// Names of the items it defines.
    items: BTreeSet<String>,
    /// Names it imports, with the path each stands for.
    imports: BTreeMap<String, Vec<String>>,
    /// Paths it glob-imports (`use path::*`).
    globs: Vec<Vec<String>>,
    /// Names of external crates declared with `extern crate`.
    externs: BTreeSet<String>,
}

/// A file-level module.
struct FileModule {
    /// Its path in the package (`src/a/b.rs`).
    source: String,
    /// Its module path from the crate root (`["a", "b"]`).
    path: Vec<String>,
    /// Its index among the modules.
    module: usize,
    ast: syn::File,
}

/// What a path resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A module.
    Module(usize),
    /// An item defined in (or unknown to, so assumed in) a module.
    Item(usize),
}

impl Target {
    fn module(self) -> usize {
        match self {
            Target::Module(m) | Target::Item(m) => m,
        }
    }
}

/// The first place a path creates an edge.
#[derive(Debug, Clone)]
struct Example {
    line: usize,
    path: String,
}

/// The file-level module graph of one crate root.
struct Graph {
    modules: Vec<Module>,
    files: Vec<FileModule>,
    /// `(from file, to file)` to the first path that creates the edge.
    edges: BTreeMap<(usize, usize), Example>,
}

impl Graph {
    /// Builds the graph of the crate whose root file is `root`.
    fn load(sources: &Sources, root: &str) -> Result<Graph, String> {
        let mut graph = Graph {
            modules: Vec::new(),
            files: Vec::new(),
            edges: BTreeMap::new(),
        };
        let dir = parent_dir(root);
        graph.add_file(sources, root, Vec::new(), None, &dir)?;
        for file in 0..graph.files.len() {
            let mut visitor = EdgeVisitor {
                graph: &graph,
                file,
                module: graph.files[file].module,
                edges: Vec::new(),
            };
            visitor.visit_file(&graph.files[file].ast);
            let found = visitor.edges;
            for (to, example) in found {
                graph.edges.entry((file, to)).or_insert(example);
            }
        }
        Ok(graph)
    }

    /// Parses `source` as the module `path` (a child of `parent`) whose
    /// children live in `child_dir`, and the files it declares.
    fn add_file(
        &mut self,
        sources: &Sources,
        source: &str,
        path: Vec<String>,
        parent: Option<usize>,
        child_dir: &str,
    ) -> Result<usize, String> {
        let text = sources
            .get(source)
            .ok_or_else(|| format!("{source} is missing"))?;
        let ast = syn::parse_file(text).map_err(|err| {
            let start = err.span().start();
            format!(
                "cannot parse {source}:{}:{}: {err}",
                start.line,
                start.column + 1
            )
        })?;
        let file = self.files.len();
        let module = self.new_module(file, parent);
        self.files.push(FileModule {
            source: source.to_owned(),
            path,
            module,
            ast,
        });
        if test_only(&self.files[file].ast.attrs) {
            return Ok(module);
        }
        let items = self.files[file].ast.items.clone();
        self.collect(
            sources,
            module,
            &items,
            child_dir,
            Some(&parent_dir(source)),
        )?;
        Ok(module)
    }

    fn new_module(&mut self, file: usize, parent: Option<usize>) -> usize {
        self.modules.push(Module {
            file,
            parent,
            ..Module::default()
        });
        self.modules.len() - 1
    }

    /// Records the names `items` define in `module`, and loads the files of
    /// the modules they declare. `file_dir` is the directory of the file
    /// holding `items` when they are not inside an inline module (where
    /// `#[path]` is relative to).
    fn collect(
        &mut self,
        sources: &Sources,
        module: usize,
        items: &[Item],
        child_dir: &str,
        file_dir: Option<&str>,
    ) -> Result<(), String> {
        for item in items {
            if test_only(item_attrs(item)) {
                continue;
            }
            match item {
                Item::Mod(m) => {
                    let name = ident(&m.ident);
                    let own_dir = format!("{child_dir}/{name}");
                    if let Some((_, content)) = &m.content {
                        let file = self.modules[module].file;
                        let inner = self.new_module(file, Some(module));
                        self.modules[module].children.insert(name, inner);
                        self.collect(sources, inner, content, &own_dir, None)?;
                        continue;
                    }
                    let candidates = match (path_attr(&m.attrs), file_dir) {
                        (Some(p), Some(dir)) => vec![normalize(&format!("{dir}/{p}"))],
                        (Some(p), None) => vec![normalize(&format!("{child_dir}/{p}"))],
                        (None, _) => vec![format!("{own_dir}.rs"), format!("{own_dir}/mod.rs")],
                    };
                    // A missing file is a module compiled out by a `cfg` on
                    // this platform; rustc would fail otherwise.
                    let Some(source) = candidates.into_iter().find(|c| sources.contains_key(c))
                    else {
                        continue;
                    };
                    let grandchild_dir = if path_attr(&m.attrs).is_some() {
                        parent_dir(&source)
                    } else {
                        own_dir
                    };
                    let file = self.modules[module].file;
                    let mut path = self.module_path(file, module);
                    path.push(name.clone());
                    let child =
                        self.add_file(sources, &source, path, Some(module), &grandchild_dir)?;
                    self.modules[module].children.insert(name, child);
                }
                Item::Use(u) => {
                    let mut leaves = Vec::new();
                    let prefix = if u.leading_colon.is_some() {
                        vec!["::".to_owned()]
                    } else {
                        Vec::new()
                    };
                    flatten(&u.tree, prefix, &mut leaves);
                    for leaf in leaves {
                        if leaf.glob {
                            self.modules[module].globs.push(leaf.path);
                        } else if let Some(binding) = leaf.binding {
                            self.modules[module]
                                .imports
                                .entry(binding)
                                .or_insert(leaf.path);
                        }
                    }
                }
                Item::ExternCrate(e) => {
                    let name = e.rename.as_ref().map_or(&e.ident, |(_, rename)| rename);
                    self.modules[module].externs.insert(ident(name));
                }
                Item::ForeignMod(f) => {
                    for foreign in &f.items {
                        let name = match foreign {
                            syn::ForeignItem::Fn(f) => Some(&f.sig.ident),
                            syn::ForeignItem::Static(s) => Some(&s.ident),
                            syn::ForeignItem::Type(t) => Some(&t.ident),
                            _ => None,
                        };
                        if let Some(name) = name {
                            self.modules[module].items.insert(ident(name));
                        }
                    }
                }
                _ => {
                    if let Some(name) = item_name(item) {
                        self.modules[module].items.insert(ident(name));
                    }
                }
            }
        }
        Ok(())
    }

    /// The module path of `module`, which lies in the file `file`.
    fn module_path(&self, file: usize, module: usize) -> Vec<String> {
        let mut names = Vec::new();
        let mut current = module;
        while current != self.files[file].module {
            let Some(parent) = self.modules[current].parent else {
                break;
            };
            if let Some((name, _)) = self.modules[parent]
                .children
                .iter()
                .find(|&(_, &child)| child == current)
            {
                names.push(name.clone());
            }
            current = parent;
        }
        names.reverse();
        let mut path = self.files[file].path.clone();
        path.extend(names);
        path
    }

    /// Resolves `segments`, written in `from`, to a module or an item;
    /// `None` for a path outside the crate (another crate, a local name).
    fn resolve(&self, from: usize, segments: &[String], depth: usize) -> Option<Target> {
        let first = segments.first()?;
        if depth > MAX_DEPTH {
            return None;
        }
        let (start, rest) = match first.as_str() {
            "crate" | "$crate" => (0, &segments[1..]),
            "self" => (from, &segments[1..]),
            "super" => {
                let mut module = from;
                let mut used = 0;
                while segments.get(used).is_some_and(|s| s == "super") {
                    module = self.modules[module].parent?;
                    used += 1;
                }
                (module, &segments[used..])
            }
            "::" => return None,
            name => match self.lookup(from, name, depth + 1)? {
                Target::Module(module) => (module, &segments[1..]),
                item @ Target::Item(_) => return Some(item),
            },
        };
        let mut module = start;
        for segment in rest {
            if segment == "self" {
                continue;
            }
            match self.lookup(module, segment, depth + 1) {
                Some(Target::Module(child)) => module = child,
                Some(item @ Target::Item(_)) => return Some(item),
                // A name the module does not define visibly (a macro made it,
                // say): it belongs to this module.
                None => return Some(Target::Item(module)),
            }
        }
        Some(Target::Module(module))
    }

    /// What `name` stands for in `module`: a child module, an item, an import
    /// or a glob-imported name.
    fn lookup(&self, module: usize, name: &str, depth: usize) -> Option<Target> {
        if depth > MAX_DEPTH {
            return None;
        }
        let m = &self.modules[module];
        if let Some(&child) = m.children.get(name) {
            return Some(Target::Module(child));
        }
        if m.items.contains(name) {
            return Some(Target::Item(module));
        }
        if m.externs.contains(name) {
            return None;
        }
        if let Some(path) = m.imports.get(name) {
            return self.resolve(module, path, depth + 1);
        }
        for glob in &m.globs {
            if let Some(Target::Module(source)) = self.resolve(module, glob, depth + 1) {
                if source != module {
                    if let Some(found) = self.lookup(source, name, depth + 1) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    /// Whether the file module `ancestor` strictly contains the file module
    /// `file` (`lib.rs` contains every other file, `a/mod.rs` contains `a/b.rs`).
    fn is_ancestor(&self, ancestor: usize, file: usize) -> bool {
        ancestor != file
            && self.files[file]
                .path
                .starts_with(&self.files[ancestor].path)
    }

    /// The cycles of the graph. The edges `known` (as `(from, to)` files)
    /// are tolerated: each that closes a cycle (joins two files of one
    /// strongly connected component) is listed, and the cycles are those left
    /// once they are taken out: each strongly connected component of more
    /// than one file, with an example of each edge between its files.
    fn cycles(&self, known: &[(&str, &str)]) -> Cycles {
        let source = |f: usize| self.files[f].source.as_str();
        let is_known = |from: usize, to: usize| known.contains(&(source(from), source(to)));
        let mut all = vec![Vec::new(); self.files.len()];
        let mut kept = vec![Vec::new(); self.files.len()];
        for &(from, to) in self.edges.keys() {
            all[from].push(to);
            if !is_known(from, to) {
                kept[from].push(to);
            }
        }
        // The component of each file, with every edge.
        let mut whole = vec![0; self.files.len()];
        for (index, members) in strongly_connected(&all).into_iter().enumerate() {
            for member in members {
                whole[member] = index;
            }
        }
        let mut found = Cycles::default();
        for (&(from, to), example) in &self.edges {
            if is_known(from, to) && whole[from] == whole[to] {
                found.tolerated.push((
                    source(from).to_owned(),
                    source(to).to_owned(),
                    self.describe(from, to, example),
                ));
            }
        }
        for component in strongly_connected(&kept) {
            if component.len() < 2 {
                continue;
            }
            let members: BTreeSet<usize> = component.iter().copied().collect();
            let mut names: Vec<String> = members.iter().map(|&f| source(f).to_owned()).collect();
            names.sort();
            let mut message = format!(
                "a module cycle between {}; move code so that the arrows point one way:",
                names.join(", ")
            );
            for (&(from, to), example) in &self.edges {
                if members.contains(&from) && members.contains(&to) && !is_known(from, to) {
                    message.push_str(&self.describe(from, to, example));
                }
            }
            found.cycles.push(message);
        }
        found.cycles.sort();
        found
    }

    /// An edge as one line of a message, newline first: the two files, and
    /// where the first path that creates the edge is.
    fn describe(&self, from: usize, to: usize, example: &Example) -> String {
        let (from, to) = (&self.files[from].source, &self.files[to].source);
        format!(
            "\n    {from} -> {to}: {from}:{} `{}`",
            example.line, example.path
        )
    }
}

/// What [`Graph::cycles`] finds.
#[derive(Debug, Default)]
struct Cycles {
    /// The cycles left once the known edges are taken out, one message
    /// each (naming the cycle's files, sorted, and its edges).
    cycles: Vec<String>,
    /// The known edges that close a cycle: from, to and a line of a message.
    tolerated: Vec<(String, String, String)>,
}

/// Tarjan's strongly connected components of the graph `successors`.
fn strongly_connected(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        successors: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        components: Vec<Vec<usize>>,
    }

    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.successors[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }

    let n = successors.len();
    let mut tarjan = Tarjan {
        successors,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if tarjan.index[v].is_none() {
            tarjan.visit(v);
        }
    }
    tarjan.components
}

/// Walks one file and collects the edges its paths create.
struct EdgeVisitor<'g> {
    graph: &'g Graph,
    /// The file being walked.
    file: usize,
    /// The (possibly inline) module the walk is in.
    module: usize,
    edges: Vec<(usize, Example)>,
}

impl EdgeVisitor<'_> {
    /// Records an edge to wherever the path `segments` of code resolves, if
    /// into another file.
    fn reference(&mut self, segments: &[String], span: Span) {
        if let Some(target) = self.graph.resolve(self.module, segments, 0) {
            self.edge(target, segments, span);
        }
    }

    /// Records an edge for a one-segment name of code (`Foo`, `helper`),
    /// resolved through the module's items, imports and glob imports. Only an
    /// item counts: a bare module name is no use of it (and is more likely a
    /// local variable of the same name).
    fn reference_name(&mut self, name: &str, span: Span) {
        let segments = [name.to_owned()];
        if let Some(target @ Target::Item(_)) = self.graph.resolve(self.module, &segments, 0) {
            self.edge(target, &segments, span);
        }
    }

    /// Records the edge of a `use` item's leaf; `public` for a `use` seen
    /// outside its module (`pub`, `pub(crate)`, `pub(super)`, `pub(in ..)`).
    fn reference_use(&mut self, leaf: &UseLeaf, public: bool) {
        let graph = self.graph;
        let Some(target) = graph.resolve(self.module, &leaf.path, 0) else {
            return;
        };
        let to = graph.modules[target.module()].file;
        // Bringing an ancestor module into scope (`use super::*`,
        // `use crate::*`) uses none of its code: each name the code then
        // takes from it is an edge of its own.
        if matches!(target, Target::Module(_)) && graph.is_ancestor(to, self.file) {
            return;
        }
        // A re-export of what a descendant defines or passes on
        // (`pub use a::Foo;` in `lib.rs`, `pub use self::c::*;` in
        // `p/mod.rs`) lays the crate out; the module's own code using the
        // name is an edge of its own.
        if public {
            let through = match target {
                Target::Module(_) => Some(target),
                Target::Item(_) => match leaf.path.split_last() {
                    Some((_, prefix)) if !prefix.is_empty() => {
                        graph.resolve(self.module, prefix, 0)
                    }
                    _ => None,
                },
            };
            if let Some(Target::Module(through)) = through {
                if graph.is_ancestor(self.file, graph.modules[through].file) {
                    return;
                }
            }
        }
        self.edge(target, &leaf.path, leaf.span);
    }

    fn edge(&mut self, target: Target, segments: &[String], span: Span) {
        let to = self.graph.modules[target.module()].file;
        if to != self.file {
            self.edges.push((
                to,
                Example {
                    line: span.start().line,
                    path: segments.join("::"),
                },
            ));
        }
    }

    /// Records the paths in a macro's tokens: `a::b` chains whose first
    /// segment is `crate`, `$crate`, `self`, `super` or a name in scope.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(group) => {
                    self.scan_tokens(group.stream());
                    i += 1;
                }
                TokenTree::Ident(first) => {
                    let leading_colon = i >= 2 && is_path_sep(&tokens[i - 2], &tokens[i - 1]);
                    // `x.name` is a field or a method, `'a` a lifetime.
                    let field_or_lifetime = i >= 1
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if matches!(p.as_char(), '.' | '\''));
                    let dollar = i >= 1
                        && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '$');
                    let mut segments = vec![if dollar && first == "crate" {
                        "$crate".to_owned()
                    } else {
                        ident(first)
                    }];
                    let span = first.span();
                    i += 1;
                    while i + 1 < tokens.len() && is_path_sep(&tokens[i], &tokens[i + 1]) {
                        match tokens.get(i + 2) {
                            Some(TokenTree::Ident(next)) => {
                                segments.push(ident(next));
                                i += 3;
                            }
                            _ => break,
                        }
                    }
                    let anchored =
                        matches!(segments[0].as_str(), "crate" | "$crate" | "self" | "super");
                    if !leading_colon && (anchored || segments.len() > 1) {
                        self.reference(&segments, span);
                    } else if !leading_colon && !field_or_lifetime && !dollar {
                        self.reference_name(&segments[0], span);
                    }
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for EdgeVisitor<'_> {
    fn visit_file(&mut self, file: &'ast syn::File) {
        if !test_only(&file.attrs) {
            visit::visit_file(self, file);
        }
    }

    fn visit_item(&mut self, item: &'ast Item) {
        if test_only(item_attrs(item)) {
            return;
        }
        match item {
            Item::Mod(m) => {
                let Some((_, content)) = &m.content else {
                    // A file of its own, walked on its own.
                    return;
                };
                let outer = self.module;
                if let Some(&inner) = self.graph.modules[outer].children.get(&ident(&m.ident)) {
                    self.module = inner;
                }
                for item in content {
                    self.visit_item(item);
                }
                self.module = outer;
            }
            Item::Use(u) => {
                let mut leaves = Vec::new();
                let prefix = if u.leading_colon.is_some() {
                    vec!["::".to_owned()]
                } else {
                    Vec::new()
                };
                flatten(&u.tree, prefix, &mut leaves);
                let public = match &u.vis {
                    syn::Visibility::Inherited => false,
                    syn::Visibility::Restricted(r) => !r.path.is_ident("self"),
                    syn::Visibility::Public(_) => true,
                };
                for leaf in &leaves {
                    self.reference_use(leaf, public);
                }
            }
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs = match item {
            syn::ImplItem::Const(c) => &c.attrs[..],
            syn::ImplItem::Fn(f) => &f.attrs,
            syn::ImplItem::Type(t) => &t.attrs,
            syn::ImplItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        let attrs = match item {
            syn::TraitItem::Const(c) => &c.attrs[..],
            syn::TraitItem::Fn(f) => &f.attrs,
            syn::TraitItem::Type(t) => &t.attrs,
            syn::TraitItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_field(&mut self, field: &'ast syn::Field) {
        if !test_only(&field.attrs) {
            visit::visit_field(self, field);
        }
    }

    fn visit_variant(&mut self, variant: &'ast syn::Variant) {
        if !test_only(&variant.attrs) {
            visit::visit_variant(self, variant);
        }
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        if !test_only(&arm.attrs) {
            visit::visit_arm(self, arm);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !test_only(&local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_stmt_macro(&mut self, mac: &'ast syn::StmtMacro) {
        if !test_only(&mac.attrs) {
            visit::visit_stmt_macro(self, mac);
        }
    }

    fn visit_field_value(&mut self, field: &'ast syn::FieldValue) {
        if !test_only(&field.attrs) {
            visit::visit_field_value(self, field);
        }
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(in crate::a)` limits who sees an item; it uses nothing.
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let mut segments: Vec<String> = Vec::new();
        if path.leading_colon.is_some() {
            segments.push("::".to_owned());
        }
        segments.extend(path.segments.iter().map(|s| ident(&s.ident)));
        let anchored = matches!(
            segments.first().map(String::as_str),
            Some("crate" | "self" | "super")
        );
        let span = path
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span());
        if anchored || (path.leading_colon.is_none() && segments.len() > 1) {
            self.reference(&segments, span);
        } else if let [name] = segments.as_slice() {
            self.reference_name(name, span);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        visit::visit_macro(self, mac);
        self.scan_tokens(mac.tokens.clone());
    }
}

/// Whether `a` `b` is the path separator `::`.
fn is_path_sep(a: &TokenTree, b: &TokenTree) -> bool {
    matches!(
        (a, b),
        (TokenTree::Punct(a), TokenTree::Punct(b))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

/// One path a `use` item imports.
struct UseLeaf {
    path: Vec<String>,
    /// The name it binds, if any (`as _` binds none, a glob many).
    binding: Option<String>,
    glob: bool,
    span: Span,
}

/// The paths of a use tree: `crate::{a::{B, C}, d}` gives `crate::a::B`,
/// `crate::a::C` and `crate::d`.
fn flatten(tree: &UseTree, prefix: Vec<String>, out: &mut Vec<UseLeaf>) {
    match tree {
        UseTree::Path(p) => {
            let mut prefix = prefix;
            prefix.push(ident(&p.ident));
            flatten(&p.tree, prefix, out);
        }
        UseTree::Name(n) if n.ident == "self" => out.push(UseLeaf {
            binding: prefix.last().cloned(),
            path: prefix,
            glob: false,
            span: n.ident.span(),
        }),
        UseTree::Name(n) => {
            let mut path = prefix;
            path.push(ident(&n.ident));
            out.push(UseLeaf {
                binding: Some(ident(&n.ident)),
                path,
                glob: false,
                span: n.ident.span(),
            });
        }
        UseTree::Rename(r) => {
            let mut path = prefix;
            if r.ident != "self" {
                path.push(ident(&r.ident));
            }
            out.push(UseLeaf {
                binding: Some(ident(&r.rename)).filter(|name| name != "_"),
                path,
                glob: false,
                span: r.ident.span(),
            });
        }
        UseTree::Glob(g) => out.push(UseLeaf {
            path: prefix,
            binding: None,
            glob: true,
            span: g.star_token.span,
        }),
        UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix.clone(), out);
            }
        }
    }
}

/// Whether these attributes make an item exist in test builds only:
/// `#[test]`, `#[tokio::test]` and the like, or a `cfg` that requires `test`.
fn test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.segments.last().is_some_and(|s| s.ident == "test") {
            return true;
        }
        path.is_ident("cfg")
            && attr
                .parse_args::<Meta>()
                .is_ok_and(|meta| cfg_requires_test(&meta))
    })
}

/// Whether the `cfg` predicate `meta` holds only when `test` does.
fn cfg_requires_test(meta: &Meta) -> bool {
    match meta {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) => {
            let Ok(nested) = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            else {
                return false;
            };
            if list.path.is_ident("all") {
                nested.iter().any(cfg_requires_test)
            } else if list.path.is_ident("any") {
                !nested.is_empty() && nested.iter().all(cfg_requires_test)
            } else {
                false
            }
        }
        Meta::NameValue(_) => false,
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The name an item defines (modules, imports and foreign items aside).
fn item_name(item: &Item) -> Option<&Ident> {
    match item {
        Item::Const(i) => Some(&i.ident),
        Item::Enum(i) => Some(&i.ident),
        Item::Fn(i) => Some(&i.sig.ident),
        Item::Macro(i) => i.ident.as_ref(),
        Item::Static(i) => Some(&i.ident),
        Item::Struct(i) => Some(&i.ident),
        Item::Trait(i) => Some(&i.ident),
        Item::TraitAlias(i) => Some(&i.ident),
        Item::Type(i) => Some(&i.ident),
        Item::Union(i) => Some(&i.ident),
        _ => None,
    }
}

/// The value of a `#[path = "..."]` attribute.
fn path_attr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| match &attr.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// An identifier without its `r#`.
fn ident(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// The directory of a `/`-separated path (`src/a/b.rs` gives `src/a`).
fn parent_dir(path: &str) -> String {
    path.rsplit_once('/')
        .map_or_else(String::new, |(dir, _)| dir.to_owned())
}

/// Removes `.` and `dir/..` from a `/`-separated path.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Sources {
        files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
            .collect()
    }

    fn check(files: &[(&str, &str)]) -> Vec<String> {
        check_package("demo", &sources(files), &[])
            .into_iter()
            .map(|finding| finding.message)
            .collect()
    }

    #[test]
    fn finds_a_cycle_through_a_re_export() {
        let problems = check(&[
            ("src/lib.rs", "mod a;\nmod b;\npub use a::Foo;\n"),
            (
                "src/a.rs",
                "pub struct Foo;\npub fn make() -> Foo { crate::b::helper(); Foo }\n",
            ),
            (
                "src/b.rs",
                "use crate::Foo;\npub fn helper() -> Option<Foo> { None }\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let problem = &problems[0];
        assert!(
            problem.starts_with("demo (src/lib.rs): a module cycle between src/a.rs, src/b.rs"),
            "{problem}"
        );
        assert!(
            problem.contains("src/a.rs -> src/b.rs: src/a.rs:2 `crate::b::helper`"),
            "{problem}"
        );
        assert!(
            problem.contains("src/b.rs -> src/a.rs: src/b.rs:1 `crate::Foo`"),
            "{problem}"
        );
    }

    #[test]
    fn follows_re_exports_transitively() {
        // `crate::Foo` is `b::Foo`, which is `c::Foo`: b only passes it on.
        let files = [
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\npub use b::Foo;\n"),
            ("src/a.rs", "pub fn f() -> crate::Foo { crate::Foo }\n"),
            (
                "src/b.rs",
                "pub use crate::c::Foo;\npub fn g() { crate::a::f(); }\n",
            ),
            ("src/c.rs", "pub struct Foo;\n"),
        ];
        assert_eq!(check(&files), Vec::<String>::new());
        let graph = Graph::load(&sources(&files), "src/lib.rs").unwrap();
        let targets: Vec<&str> = graph
            .edges
            .keys()
            .filter(|(from, _)| graph.files[*from].source == "src/a.rs")
            .map(|&(_, to)| graph.files[to].source.as_str())
            .collect();
        assert_eq!(targets, ["src/c.rs"]);
    }

    #[test]
    fn finds_a_cycle_through_a_nested_use_group() {
        let problems = check(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
            (
                "src/a.rs",
                "use crate::{\n    b::{B1, B2},\n    c,\n};\npub struct A(B1, B2);\n",
            ),
            ("src/b.rs", "pub struct B1;\npub struct B2;\n"),
            ("src/c.rs", "pub fn f(_: &crate::a::A) {}\n"),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        // b is not in the cycle; c is, through the group's `c`.
        assert!(
            problems[0].contains("a module cycle between src/a.rs, src/c.rs;"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("src/a.rs -> src/c.rs: src/a.rs:3 `crate::c`"),
            "{problems:?}"
        );
    }

    #[test]
    fn finds_a_cycle_through_super_sibling() {
        let problems = check(&[
            ("src/main.rs", "mod net;\nfn main() {}\n"),
            ("src/net/mod.rs", "mod a;\nmod b;\n"),
            ("src/net/a.rs", "pub fn f() { super::b::g() }\n"),
            (
                "src/net/b.rs",
                "use super::a::f;\npub fn g() {}\npub fn h() { f() }\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "demo (src/main.rs): a module cycle between src/net/a.rs, src/net/b.rs"
            ),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("src/net/a.rs:1 `super::b::g`"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("src/net/b.rs:1 `super::a::f`"),
            "{problems:?}"
        );
    }

    #[test]
    fn ignores_test_only_references() {
        let problems = check(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A(pub B);\n"),
            (
                "src/b.rs",
                r#"pub struct B;
#[cfg(test)]
use crate::a::A;
impl B {
    #[cfg(test)]
    fn wrap(self) -> crate::a::A { crate::a::A(self) }
}
#[test]
fn wraps() { let _ = crate::a::A(B); }
#[cfg(all(test, feature = "x"))]
fn more() -> crate::a::A { crate::a::A(B) }
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn it() { let _: A = crate::a::A(B); }
}
#[cfg(test)]
mod more_tests;
"#,
            ),
            ("src/b/more_tests.rs", "use crate::a::A;\n"),
        ]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn cfg_other_than_test_counts() {
        let problems = check(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A(pub B);\n"),
            (
                "src/b.rs",
                "pub struct B;\n#[cfg(any(test, feature = \"faults\"))]\npub fn f(_: crate::a::A) {}\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    /// The edges of the crate whose root is `root`, as `from -> to` files.
    fn edges(files: &[(&str, &str)], root: &str) -> Vec<String> {
        let graph = Graph::load(&sources(files), root).unwrap();
        graph
            .edges
            .keys()
            .map(|&(from, to)| {
                format!("{} -> {}", graph.files[from].source, graph.files[to].source)
            })
            .collect()
    }

    #[test]
    fn allows_a_facade_and_children_that_use_their_parent() {
        // The parents declare their children, re-export what they define and
        // define what the children share, but use none of them.
        let files = [
            (
                "src/lib.rs",
                "pub mod p;\nmod q;\npub use p::C;\npub(crate) use q::*;\npub fn version() -> &'static str { \"1\" }\n",
            ),
            (
                "src/p/mod.rs",
                "mod c;\nmod d;\npub use c::C;\npub use self::d::*;\npub struct P;\n",
            ),
            (
                "src/p/c.rs",
                "use super::*;\npub struct C(pub P, pub D);\npub fn v() -> &'static str { crate::version() }\n",
            ),
            (
                "src/p/d/mod.rs",
                "mod e;\npub struct D;\npub fn g(_: &crate::p::P) -> crate::Q { crate::Q }\n",
            ),
            (
                "src/p/d/e.rs",
                "use super::super::P as P2;\npub fn h(_: &P2, _: &crate::C) {}\n",
            ),
            ("src/q.rs", "pub struct Q;\n"),
        ];
        assert_eq!(check(&files), Vec::<String>::new());
        assert_eq!(
            edges(&files, "src/lib.rs"),
            [
                // `D` through `use super::*` and `pub use self::d::*`.
                "src/p/c.rs -> src/lib.rs",
                "src/p/c.rs -> src/p/mod.rs",
                "src/p/c.rs -> src/p/d/mod.rs",
                "src/p/d/mod.rs -> src/p/mod.rs",
                "src/p/d/mod.rs -> src/q.rs",
                "src/p/d/e.rs -> src/p/mod.rs",
                "src/p/d/e.rs -> src/p/c.rs",
            ]
        );
    }

    #[test]
    fn reports_a_parent_and_a_child_that_use_each_other() {
        let problems = check(&[
            ("src/lib.rs", "mod p;\n"),
            (
                "src/p/mod.rs",
                "mod d;\npub struct P;\npub fn f(_: &d::D) {}\n",
            ),
            ("src/p/d.rs", "pub struct D;\npub fn g(_: &super::P) {}\n"),
        ]);
        assert_eq!(
            problems,
            [
                "demo (src/lib.rs): a module cycle between src/p/d.rs, src/p/mod.rs; move code so that the arrows point one way:\n    src/p/mod.rs -> src/p/d.rs: src/p/mod.rs:3 `d::D`\n    src/p/d.rs -> src/p/mod.rs: src/p/d.rs:2 `super::P`"
            ]
        );
    }

    #[test]
    fn finds_a_cycle_through_a_child_and_its_parent() {
        // x/mod.rs -> z.rs -> x/y.rs -> x/mod.rs.
        let problems = check(&[
            ("src/lib.rs", "mod x;\nmod z;\n"),
            (
                "src/x/mod.rs",
                "pub mod y;\npub struct Thing;\npub fn run() { crate::z::go() }\n",
            ),
            ("src/z.rs", "pub fn go() { crate::x::y::step(); }\n"),
            (
                "src/x/y.rs",
                "pub fn step() -> super::Thing { super::Thing }\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let problem = &problems[0];
        assert!(
            problem.starts_with(
                "demo (src/lib.rs): a module cycle between src/x/mod.rs, src/x/y.rs, src/z.rs;"
            ),
            "{problem}"
        );
        for edge in [
            "src/x/mod.rs -> src/z.rs: src/x/mod.rs:3 `crate::z::go`",
            "src/z.rs -> src/x/y.rs: src/z.rs:1 `crate::x::y::step`",
            "src/x/y.rs -> src/x/mod.rs: src/x/y.rs:1 `super::Thing`",
        ] {
            assert!(problem.contains(edge), "{edge} in {problem}");
        }
    }

    #[test]
    fn finds_a_cycle_through_items_of_the_crate_root() {
        let problems = check(&[
            (
                "src/lib.rs",
                "mod a;\nmod b;\npub fn helper() {}\npub fn entry() { a::f() }\n",
            ),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            ("src/b.rs", "pub fn g() { crate::helper() }\n"),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let problem = &problems[0];
        assert!(
            problem.starts_with(
                "demo (src/lib.rs): a module cycle between src/a.rs, src/b.rs, src/lib.rs;"
            ),
            "{problem}"
        );
        for edge in [
            "src/lib.rs -> src/a.rs: src/lib.rs:4 `a::f`",
            "src/a.rs -> src/b.rs: src/a.rs:1 `crate::b::g`",
            "src/b.rs -> src/lib.rs: src/b.rs:1 `crate::helper`",
        ] {
            assert!(problem.contains(edge), "{edge} in {problem}");
        }
    }

    #[test]
    fn finds_a_cycle_through_a_glob_import() {
        // `Foo` (or `NAME`, in a macro) comes through `use crate::*` from
        // lib.rs's re-export of c.
        for (a, line) in [
            (
                "use crate::*;\npub fn f() -> Foo { Foo }\n",
                "src/a.rs:2 `Foo`",
            ),
            (
                "use crate::*;\npub fn f() -> String { format!(\"{}\", NAME) }\n",
                "src/a.rs:2 `NAME`",
            ),
            (
                "use crate::c::*;\npub fn f() -> Foo { Foo }\n",
                "src/a.rs:1 `crate::c`",
            ),
        ] {
            let problems = check(&[
                ("src/lib.rs", "mod a;\nmod c;\npub use c::{Foo, NAME};\n"),
                ("src/a.rs", a),
                (
                    "src/c.rs",
                    "pub struct Foo;\npub const NAME: &str = \"c\";\npub fn g() { crate::a::f(); }\n",
                ),
            ]);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].contains("a module cycle between src/a.rs, src/c.rs;"),
                "{problems:?}"
            );
            assert!(
                problems[0].contains(&format!("src/a.rs -> src/c.rs: {line}")),
                "{line} in {problems:?}"
            );
        }

        // Through `use super::*` and the parent's re-export.
        let problems = check(&[
            ("src/lib.rs", "mod p;\n"),
            ("src/p/mod.rs", "mod a;\nmod c;\npub use c::Foo;\n"),
            ("src/p/a.rs", "use super::*;\npub fn f() -> Foo { Foo }\n"),
            (
                "src/p/c.rs",
                "pub struct Foo;\npub fn g() { super::a::f(); }\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("src/p/a.rs -> src/p/c.rs: src/p/a.rs:2 `Foo`"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_parent_using_what_it_re_exports_uses_the_child() {
        let facade = [
            (
                "src/lib.rs",
                "mod c;\npub use c::Foo;\npub fn helper() {}\n",
            ),
            (
                "src/c.rs",
                "pub struct Foo;\npub fn g() { crate::helper() }\n",
            ),
        ];
        assert_eq!(check(&facade), Vec::<String>::new());

        let problems = check(&[
            (
                "src/lib.rs",
                "mod c;\npub use c::Foo;\npub fn helper() {}\npub fn make() -> Foo { Foo }\n",
            ),
            (
                "src/c.rs",
                "pub struct Foo;\npub fn g() { crate::helper() }\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("src/lib.rs -> src/c.rs: src/lib.rs:4 `Foo`"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_glob_of_the_parent_or_a_bare_module_name_is_no_use() {
        let problems = check(&[
            (
                "src/lib.rs",
                "mod config;\nmod p;\npub fn helper() {}\npub fn f() -> u8 { let config = 1; config }\n",
            ),
            ("src/config.rs", "pub fn g() { crate::helper() }\n"),
            (
                "src/p/mod.rs",
                "mod a;\nmod b;\npub use b::B;\npub fn run() { a::go(); }\n",
            ),
            ("src/p/a.rs", "use super::*;\npub fn go() -> B { B }\n"),
            ("src/p/b.rs", "pub struct B;\n"),
        ]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn sees_paths_in_macros_and_inline_modules() {
        let problems = check(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            (
                "src/a.rs",
                "pub mod inner {\n    pub fn f() -> String { format!(\"{}\", super::super::b::NAME) }\n}\n",
            ),
            (
                "src/b.rs",
                "pub const NAME: &str = \"b\";\nuse crate::a::inner::f;\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("src/a.rs:2 `super::super::b::NAME`"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("src/b.rs:2 `crate::a::inner::f`"),
            "{problems:?}"
        );
    }

    #[test]
    fn each_binary_is_its_own_crate() {
        let problems = check(&[
            ("src/lib.rs", "pub mod a;\npub mod b;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            ("src/b.rs", "pub fn g() {}\n"),
            ("src/bin/tool/main.rs", "mod a;\nmod b;\nfn main() {}\n"),
            ("src/bin/tool/a.rs", "pub fn f() { crate::b::g() }\n"),
            ("src/bin/tool/b.rs", "pub fn g() { crate::a::f() }\n"),
            ("src/bin/other.rs", "fn main() { lift::a::f() }\n"),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "demo (src/bin/tool/main.rs): a module cycle between src/bin/tool/a.rs, src/bin/tool/b.rs"
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn reports_a_file_that_does_not_parse() {
        let problems = check(&[("src/lib.rs", "mod a;\n"), ("src/a.rs", "fn (\n")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("demo: cannot parse src/a.rs:1:"),
            "{problems:?}"
        );
    }

    #[test]
    fn known_edges_are_tolerated_until_they_close_no_cycle() {
        let cycle = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            ("src/b.rs", "pub fn g() { crate::a::f() }\n"),
        ];
        let known: &[(&str, &str, &str)] = &[("demo", "src/b.rs", "src/a.rs")];
        let judged = |package: &str, files: &[(&str, &str)]| {
            judge(check_package(package, &sources(files), known), known)
        };
        let report = judged("demo", &cycle);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(
            report.tolerated,
            [
                "demo (src/lib.rs): module cycles closed by these edges (move code so that the arrows point one way):\n    src/b.rs -> src/a.rs: src/b.rs:1 `crate::a::f`"
            ]
        );

        // The same edge in another package is not known.
        let report = judged("other", &cycle);
        assert_eq!(report.problems.len(), 2, "{report:?}");
        assert!(report.problems[0].starts_with("other (src/lib.rs): a module cycle"));
        assert!(report.problems[1].contains("no longer closes a module cycle: remove it"));

        // A file that joins the known cycle, closing it through the known
        // edge only, is tolerated with it.
        let joined = [
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("src/a.rs", "pub fn f() { crate::c::h() }\n"),
            ("src/b.rs", "pub fn g() { crate::a::f() }\n"),
            ("src/c.rs", "pub fn h() { crate::b::g() }\n"),
        ];
        let report = judged("demo", &joined);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.tolerated.len(), 1, "{report:?}");

        // Another edge closing a cycle is a new problem.
        let another = [
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g(); crate::c::h() }\n"),
            ("src/b.rs", "pub fn g() { crate::a::f() }\n"),
            ("src/c.rs", "pub fn h() { crate::a::f() }\n"),
        ];
        let report = judged("demo", &another);
        assert_eq!(report.tolerated.len(), 1, "{report:?}");
        assert_eq!(report.problems.len(), 1, "{report:?}");
        assert!(
            report.problems[0]
                .starts_with("demo (src/lib.rs): a module cycle between src/a.rs, src/c.rs;"),
            "{report:?}"
        );
        assert!(!report.problems[0].contains("src/b.rs"), "{report:?}");

        // Once the edge is gone, or no longer closes a cycle, the entry must go.
        let untied = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            ("src/b.rs", "pub fn g() {}\n"),
        ];
        let one_way = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "pub fn f() {}\n"),
            ("src/b.rs", "pub fn g() { crate::a::f() }\n"),
        ];
        for files in [untied, one_way] {
            let report = judged("demo", &files);
            assert_eq!(report.tolerated, Vec::<String>::new());
            assert_eq!(
                report.problems,
                [
                    "demo: the known edge src/b.rs -> src/a.rs no longer closes a module cycle: remove it from KNOWN_CYCLES in xtask/src/module_cycles.rs"
                ]
            );
        }
    }

    #[test]
    fn tarjan_finds_the_components() {
        let graph = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3], vec![]];
        let mut components: Vec<Vec<usize>> = strongly_connected(&graph)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c
            })
            .collect();
        components.sort();
        assert_eq!(components, vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
    }

    #[test]
    fn the_real_workspace_has_no_module_cycles() {
        let metadata = crate::tidy::workspace_metadata(&crate::workspace::project_root()).unwrap();
        assert_eq!(
            check_workspace(&metadata).unwrap().problems,
            Vec::<String>::new()
        );
    }
}
