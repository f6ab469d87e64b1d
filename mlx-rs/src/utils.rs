//! Parameter trees, as in Python's `mlx.utils`: nested maps and lists of arrays, flattened to
//! and rebuilt from Python's dotted paths (`layers.0.attn.q_proj.weight`).
//!
//! A [`Tree`] is what a model's parameters, its gradients and an optimizer's state are. Maps
//! keep the order in which their keys were inserted, as Python dicts do, so flattening gives the
//! same paths in the same order as `mlx.utils.tree_flatten`.
//!
//! ```
//! use mlx_rs::Array;
//! use mlx_rs::utils::{Tree, tree_flatten, tree_unflatten};
//! let tree = tree_unflatten(vec![
//!     ("layers.0.weight".to_owned(), Array::scalar(1.0f32)),
//!     ("layers.1.weight".to_owned(), Array::scalar(2.0f32)),
//!     ("norm.weight".to_owned(), Array::scalar(3.0f32)),
//! ])?;
//! assert!(matches!(tree.get("layers"), Some(Tree::List(layers)) if layers.len() == 2));
//! let paths: Vec<String> = tree_flatten(&tree).into_iter().map(|(path, _)| path).collect();
//! assert_eq!(paths, ["layers.0.weight", "layers.1.weight", "norm.weight"]);
//! # Ok::<(), mlx_rs::Error>(())
//! ```

use indexmap::IndexMap;

use crate::{Array, Error, Result};

/// A nested tree of leaves (arrays by default): maps with string keys, lists, and leaves.
#[derive(Clone, Debug, PartialEq)]
pub enum Tree<T = Array> {
    /// A leaf value.
    Leaf(T),
    /// Named subtrees, in insertion order (a Python dict).
    Map(IndexMap<String, Tree<T>>),
    /// Numbered subtrees (a Python list).
    List(Vec<Tree<T>>),
}

impl<T> Default for Tree<T> {
    /// An empty map.
    fn default() -> Self {
        Tree::Map(IndexMap::new())
    }
}

impl<T> From<T> for Tree<T> {
    fn from(leaf: T) -> Self {
        Tree::Leaf(leaf)
    }
}

impl<T> FromIterator<(String, Tree<T>)> for Tree<T> {
    /// A map of the given subtrees.
    fn from_iter<I: IntoIterator<Item = (String, Tree<T>)>>(iter: I) -> Self {
        Tree::Map(iter.into_iter().collect())
    }
}

const OP: &str = "tree";

impl<T> Tree<T> {
    /// An empty map.
    pub fn new() -> Self {
        Tree::default()
    }

    /// The number of leaves.
    pub fn num_leaves(&self) -> usize {
        match self {
            Tree::Leaf(_) => 1,
            Tree::Map(map) => map.values().map(Tree::num_leaves).sum(),
            Tree::List(list) => list.iter().map(Tree::num_leaves).sum(),
        }
    }

    /// True when the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.num_leaves() == 0
    }

    /// The leaves, in flattening order.
    pub fn leaves(&self) -> Vec<&T> {
        let mut out = Vec::new();
        self.visit(&mut String::new(), &mut |_, leaf| out.push(leaf));
        out
    }

    /// The subtree at a dotted `path` (`""` is the tree itself), if there is one.
    pub fn get(&self, path: &str) -> Option<&Tree<T>> {
        if path.is_empty() {
            return Some(self);
        }
        path.split('.').try_fold(self, |node, key| match node {
            Tree::Map(map) => map.get(key),
            Tree::List(list) => key.parse::<usize>().ok().and_then(|i| list.get(i)),
            Tree::Leaf(_) => None,
        })
    }

    /// The leaf at a dotted `path`, if there is one.
    pub fn get_leaf(&self, path: &str) -> Option<&T> {
        match self.get(path) {
            Some(Tree::Leaf(leaf)) => Some(leaf),
            _ => None,
        }
    }

    /// The leaf at a dotted `path`, or an error naming the path.
    pub fn leaf(&self, path: &str) -> Result<&T> {
        self.get_leaf(path)
            .ok_or_else(|| Error::invalid(OP, format!("the tree has no leaf at `{path}`")))
    }

    /// The subtree at a dotted `path`, mutably, if there is one.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Tree<T>> {
        if path.is_empty() {
            return Some(self);
        }
        path.split('.').try_fold(self, |node, key| match node {
            Tree::Map(map) => map.get_mut(key),
            Tree::List(list) => key.parse::<usize>().ok().and_then(|i| list.get_mut(i)),
            Tree::Leaf(_) => None,
        })
    }

    /// Sets the leaf at a dotted `path`, creating maps on the way, and returns the leaf it
    /// replaced. Errors when the path runs through a leaf, indexes a list out of range, names
    /// a list element by a key that is not a number, or names a non-empty subtree.
    pub fn insert(&mut self, path: &str, leaf: T) -> Result<Option<T>> {
        match self.insert_tree(path, Tree::Leaf(leaf))? {
            Some(Tree::Leaf(old)) => Ok(Some(old)),
            _ => Ok(None),
        }
    }

    /// Sets the subtree at a dotted `path`, creating maps on the way, and returns what it
    /// replaced (a leaf or an empty map; replacing a non-empty subtree is an error, as it would
    /// drop leaves silently). Errors as [`Tree::insert`].
    pub fn insert_tree(&mut self, path: &str, tree: Tree<T>) -> Result<Option<Tree<T>>> {
        let mut node = self;
        for key in path.split('.') {
            node = match node {
                Tree::Map(map) => map.entry(key.to_owned()).or_default(),
                Tree::List(list) => {
                    let len = list.len();
                    key.parse::<usize>().ok().and_then(|i| list.get_mut(i)).ok_or_else(|| {
                        Error::invalid(
                            OP,
                            format!("`{path}`: `{key}` is not an index of a list of {len}"),
                        )
                    })?
                }
                Tree::Leaf(_) => {
                    return Err(Error::invalid(OP, format!("`{path}` runs through a leaf")));
                }
            };
        }
        if !matches!(node, Tree::Leaf(_)) && !node.is_empty() {
            return Err(Error::invalid(OP, format!("`{path}` is a subtree, not a leaf")));
        }
        let old = std::mem::replace(node, tree);
        Ok(match old {
            Tree::Leaf(_) => Some(old),
            _ => None,
        })
    }

    /// Calls `f(path, leaf)` for every leaf, in flattening order.
    fn visit<'a>(&'a self, path: &mut String, f: &mut impl FnMut(&str, &'a T)) {
        match self {
            Tree::Leaf(leaf) => f(path, leaf),
            Tree::Map(map) => {
                for (key, child) in map {
                    child.visit_child(path, key, f);
                }
            }
            Tree::List(list) => {
                for (i, child) in list.iter().enumerate() {
                    child.visit_child(path, &i.to_string(), f);
                }
            }
        }
    }

    fn visit_child<'a>(&'a self, path: &mut String, key: &str, f: &mut impl FnMut(&str, &'a T)) {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        self.visit(path, f);
        path.truncate(len);
    }

    /// A tree of the same structure whose leaves are `f(path, leaf)`.
    pub fn map_with_path<U>(&self, mut f: impl FnMut(&str, &T) -> Result<U>) -> Result<Tree<U>> {
        self.map_inner(&mut String::new(), &mut f)
    }

    fn map_inner<U>(
        &self,
        path: &mut String,
        f: &mut impl FnMut(&str, &T) -> Result<U>,
    ) -> Result<Tree<U>> {
        let mut child = |path: &mut String, key: &str, tree: &Tree<T>| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            let mapped = tree.map_inner(path, f);
            path.truncate(len);
            mapped
        };
        Ok(match self {
            Tree::Leaf(leaf) => Tree::Leaf(f(path, leaf)?),
            Tree::Map(map) => Tree::Map(
                map.iter()
                    .map(|(key, tree)| Ok((key.clone(), child(path, key, tree)?)))
                    .collect::<Result<_>>()?,
            ),
            Tree::List(list) => Tree::List(
                list.iter()
                    .enumerate()
                    .map(|(i, tree)| child(path, &i.to_string(), tree))
                    .collect::<Result<_>>()?,
            ),
        })
    }

    /// A tree of the same structure whose leaves are `f(leaf)`.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> Result<U>) -> Result<Tree<U>> {
        self.map_with_path(|_, leaf| f(leaf))
    }

    /// A tree of the same structure whose leaves are taken, in flattening order, from `leaves`.
    /// Errors when `leaves` has fewer or more items than the tree has leaves.
    pub fn with_leaves<U>(&self, leaves: impl IntoIterator<Item = U>) -> Result<Tree<U>> {
        let mut leaves = leaves.into_iter();
        let tree = self.map_with_path(|path, _| {
            leaves.next().ok_or_else(|| {
                Error::invalid(OP, format!("too few leaves: none left for `{path}`"))
            })
        })?;
        if leaves.next().is_some() {
            return Err(Error::invalid(
                OP,
                format!("more leaves given than the tree's {}", self.num_leaves()),
            ));
        }
        Ok(tree)
    }

    /// The dotted paths of the leaves, in flattening order.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut String::new(), &mut |path, _| out.push(path.to_owned()));
        out
    }
}

/// The leaves of `tree` with their dotted paths, in order (`mlx.utils.tree_flatten`). A leaf
/// at the root has the path `""`.
pub fn tree_flatten<T: Clone>(tree: &Tree<T>) -> Vec<(String, T)> {
    let mut out = Vec::with_capacity(tree.num_leaves());
    tree.visit(&mut String::new(), &mut |path, leaf| out.push((path.to_owned(), leaf.clone())));
    out
}

/// The tree whose flat form is `items` (`mlx.utils.tree_unflatten`).
///
/// As in Python, a level whose keys are all integers becomes a list (missing positions become
/// empty maps), any other level a map in the order the keys first appear, and a single item
/// with the path `""` is a leaf at the root. Unlike Python, which keeps the last of two equal
/// paths, a path given twice, or given both as a leaf and as a subtree, is an error.
pub fn tree_unflatten<T>(items: Vec<(String, T)>) -> Result<Tree<T>> {
    if items.len() == 1 && items[0].0.is_empty() {
        let (_, leaf) = items.into_iter().next().ok_or_else(|| Error::invalid(OP, "no items"))?;
        return Ok(Tree::Leaf(leaf));
    }
    let entries = items.into_iter().map(|(path, leaf)| (path.clone(), path, leaf));
    unflatten_level(entries.collect(), "")
}

/// One level of [`tree_unflatten`]: `(full path, rest of the path, leaf)` entries.
fn unflatten_level<T>(entries: Vec<(String, String, T)>, prefix: &str) -> Result<Tree<T>> {
    enum Slot<T> {
        Leaf(T),
        Children(Vec<(String, String, T)>),
    }
    // Keys in first-appearance order, as Python's `defaultdict` keeps them.
    let mut slots: IndexMap<String, Slot<T>> = IndexMap::new();
    for (full, rest, leaf) in entries {
        let (key, tail) = match rest.split_once('.') {
            Some((key, tail)) => (key.to_owned(), Some(tail.to_owned())),
            None => (rest, None),
        };
        if key.is_empty() {
            return Err(Error::invalid(OP, format!("`{full}` has an empty key")));
        }
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (slots.get_mut(&key), tail) {
            (None, None) => {
                slots.insert(key, Slot::Leaf(leaf));
            }
            (None, Some(tail)) => {
                slots.insert(key, Slot::Children(vec![(full, tail, leaf)]));
            }
            (Some(Slot::Children(children)), Some(tail)) => children.push((full, tail, leaf)),
            (Some(Slot::Leaf(_)), None) => {
                return Err(Error::invalid(OP, format!("`{full}` is given twice")));
            }
            (Some(_), _) => {
                return Err(Error::invalid(
                    OP,
                    format!("`{path}` is given both as a leaf and as a subtree"),
                ));
            }
        }
    }
    let mut nodes = Vec::with_capacity(slots.len());
    for (key, slot) in slots {
        let node = match slot {
            Slot::Leaf(leaf) => Tree::Leaf(leaf),
            Slot::Children(children) => {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                unflatten_level(children, &path)?
            }
        };
        nodes.push((key, node));
    }
    // A list when every key is a number and no two keys name the same number ("1", "01"),
    // as in Python; otherwise a map.
    let indices: Option<Vec<usize>> = nodes.iter().map(|(key, _)| list_index(key)).collect();
    if let Some(indices) = indices {
        let mut sorted = indices.clone();
        sorted.sort_unstable();
        if sorted.windows(2).all(|w| w[0] != w[1]) {
            let mut numbered: Vec<(usize, Tree<T>)> =
                indices.into_iter().zip(nodes.into_iter().map(|(_, node)| node)).collect();
            numbered.sort_by_key(|(i, _)| *i);
            let mut list = Vec::with_capacity(numbered.len());
            for (i, node) in numbered {
                list.resize_with(i, Tree::default);
                list.push(node);
            }
            return Ok(Tree::List(list));
        }
    }
    Ok(Tree::Map(nodes.into_iter().collect()))
}

/// `key` as a list index when it is a decimal number (as Python's `int(key)` reads it).
fn list_index(key: &str) -> Option<usize> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// A tree of the same structure whose leaves are `f(leaf)` (`mlx.utils.tree_map` of one tree).
pub fn tree_map<T, U>(tree: &Tree<T>, f: impl FnMut(&T) -> Result<U>) -> Result<Tree<U>> {
    tree.map(f)
}

/// A tree of the same structure whose leaves are `f(path, leaf)`
/// (`mlx.utils.tree_map_with_path`).
pub fn tree_map_with_path<T, U>(
    tree: &Tree<T>,
    f: impl FnMut(&str, &T) -> Result<U>,
) -> Result<Tree<U>> {
    tree.map_with_path(f)
}

/// The leaves of two trees of the same structure, paired (`tree_map(fn, a, b)` in Python).
/// Errors name the first path where the structures differ.
pub fn tree_zip<T: Clone, U: Clone>(a: &Tree<T>, b: &Tree<U>) -> Result<Tree<(T, U)>> {
    zip_inner(a, b, &mut String::new())
}

fn zip_inner<T: Clone, U: Clone>(
    a: &Tree<T>,
    b: &Tree<U>,
    path: &mut String,
) -> Result<Tree<(T, U)>> {
    let mismatch = |path: &str, what: String| {
        let at = if path.is_empty() { "the root".to_owned() } else { format!("`{path}`") };
        Err(Error::invalid(OP, format!("the trees differ at {at}: {what}")))
    };
    let child = |path: &mut String, key: &str, a: &Tree<T>, b: &Tree<U>| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let zipped = zip_inner(a, b, path);
        path.truncate(len);
        zipped
    };
    match (a, b) {
        (Tree::Leaf(x), Tree::Leaf(y)) => Ok(Tree::Leaf((x.clone(), y.clone()))),
        (Tree::Map(x), Tree::Map(y)) => {
            if let Some(key) = x.keys().find(|k| !y.contains_key(*k)) {
                return mismatch(path, format!("`{key}` is only in the first"));
            }
            if let Some(key) = y.keys().find(|k| !x.contains_key(*k)) {
                return mismatch(path, format!("`{key}` is only in the second"));
            }
            let mut map = IndexMap::with_capacity(x.len());
            for (key, xa) in x {
                let yb = &y[key];
                map.insert(key.clone(), child(path, key, xa, yb)?);
            }
            Ok(Tree::Map(map))
        }
        (Tree::List(x), Tree::List(y)) if x.len() == y.len() => Ok(Tree::List(
            x.iter()
                .zip(y)
                .enumerate()
                .map(|(i, (xa, yb))| child(path, &i.to_string(), xa, yb))
                .collect::<Result<_>>()?,
        )),
        (Tree::List(x), Tree::List(y)) => {
            mismatch(path, format!("lists of {} and {} items", x.len(), y.len()))
        }
        (x, y) => mismatch(path, format!("a {} and a {}", kind(x), kind(y))),
    }
}

fn kind<T>(tree: &Tree<T>) -> &'static str {
    match tree {
        Tree::Leaf(_) => "leaf",
        Tree::Map(_) => "map",
        Tree::List(_) => "list",
    }
}

/// Two trees in one, like a deep `dict.update` (`mlx.utils.tree_merge`): maps are united key by
/// key, lists position by position (the longer list's tail is kept), and empty maps or lists
/// count as absent. Where both trees have a leaf at the same path, `merge(path, a, b)` decides;
/// pass [`refuse_conflicts`] to make that an error, as Python does without a `merge_fn`.
pub fn tree_merge<T>(
    a: Tree<T>,
    b: Tree<T>,
    mut merge: impl FnMut(&str, T, T) -> Result<T>,
) -> Result<Tree<T>> {
    merge_inner(a, b, &mut String::new(), &mut merge)
}

/// The `merge` argument of [`tree_merge`] that refuses two leaves at one path.
pub fn refuse_conflicts<T>(path: &str, _: T, _: T) -> Result<T> {
    Err(Error::invalid(OP, format!("both trees have a leaf at `{path}`")))
}

fn merge_inner<T>(
    a: Tree<T>,
    b: Tree<T>,
    path: &mut String,
    merge: &mut impl FnMut(&str, T, T) -> Result<T>,
) -> Result<Tree<T>> {
    let empty = |t: &Tree<T>| match t {
        Tree::Map(m) => m.is_empty(),
        Tree::List(l) => l.is_empty(),
        Tree::Leaf(_) => false,
    };
    if empty(&a) {
        return Ok(b);
    }
    if empty(&b) {
        return Ok(a);
    }
    let child = |path: &mut String, key: &str, a: Tree<T>, b: Tree<T>, merge: &mut _| {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        let merged = merge_inner(a, b, path, merge);
        path.truncate(len);
        merged
    };
    match (a, b) {
        (Tree::Leaf(x), Tree::Leaf(y)) => Ok(Tree::Leaf(merge(path, x, y)?)),
        (Tree::Map(mut x), Tree::Map(y)) => {
            for (key, yb) in y {
                match x.get_mut(&key) {
                    Some(slot) => {
                        let xa = std::mem::take(slot);
                        *slot = child(path, &key, xa, yb, merge)?;
                    }
                    None => {
                        x.insert(key, yb);
                    }
                }
            }
            Ok(Tree::Map(x))
        }
        (Tree::List(x), Tree::List(y)) => {
            let (mut x, mut y) = (x.into_iter(), y.into_iter());
            let mut list = Vec::new();
            loop {
                let item = match (x.next(), y.next()) {
                    (Some(xa), Some(yb)) => child(path, &list.len().to_string(), xa, yb, merge)?,
                    (Some(only), None) | (None, Some(only)) => only,
                    (None, None) => break,
                };
                list.push(item);
            }
            Ok(Tree::List(list))
        }
        (x, y) => Err(Error::invalid(
            OP,
            format!("cannot merge a {} with a {} at `{path}`", kind(&x), kind(&y)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(items: &[(&str, i32)]) -> Vec<(String, i32)> {
        items.iter().map(|&(p, v)| (p.to_owned(), v)).collect()
    }

    #[test]
    fn unflatten_builds_lists_and_maps_in_order() {
        let tree = tree_unflatten(flat(&[("b.1", 2), ("b.0", 1), ("a", 3)])).unwrap();
        assert_eq!(tree_flatten(&tree), flat(&[("b.0", 1), ("b.1", 2), ("a", 3)]));
        assert_eq!(tree.paths(), ["b.0", "b.1", "a"]);
        assert_eq!(tree.get_leaf("b.1"), Some(&2));
        // A gap becomes an empty map, as in Python.
        let gap = tree_unflatten(flat(&[("2", 5)])).unwrap();
        assert_eq!(gap, Tree::List(vec![Tree::new(), Tree::new(), Tree::Leaf(5)]));
        assert_eq!(tree_unflatten(flat(&[("", 7)])).unwrap(), Tree::Leaf(7));
    }

    #[test]
    fn unflatten_rejects_ambiguous_input() {
        for bad in [&[("a", 1), ("a", 2)][..], &[("a", 1), ("a.b", 2)], &[("a..b", 1)]] {
            let err = tree_unflatten(flat(bad)).unwrap_err();
            assert!(err.message().contains('`'), "{err}");
        }
    }

    #[test]
    fn insert_and_map_keep_structure() {
        let mut tree = Tree::new();
        assert_eq!(tree.insert("x.y", 1).unwrap(), None);
        assert_eq!(tree.insert("x.y", 2).unwrap(), Some(1));
        assert!(tree.insert("x.y.z", 3).is_err());
        let doubled = tree.map_with_path(|p, v| Ok(format!("{p}={}", v * 2))).unwrap();
        assert_eq!(doubled.get_leaf("x.y").map(String::as_str), Some("x.y=4"));
        let mut sub = Tree::new();
        sub.insert("m", 5).unwrap();
        assert!(tree.insert_tree("x", sub.clone()).is_err(), "x holds a leaf");
        assert_eq!(tree.insert_tree("opt", sub).unwrap(), None);
        assert_eq!(tree.paths(), ["x.y", "opt.m"]);
        if let Some(Tree::Leaf(v)) = tree.get_mut("opt.m") {
            *v = 6;
        }
        assert_eq!(tree.leaf("opt.m").unwrap(), &6);
        let replaced = tree.with_leaves([9, 6]).unwrap();
        assert_eq!(replaced.get_leaf("x.y"), Some(&9));
        assert!(tree.with_leaves([1, 2, 3]).is_err());
        assert!(tree.with_leaves(Vec::<i32>::new()).is_err());
    }

    #[test]
    fn zip_names_the_first_difference() {
        let a = tree_unflatten(flat(&[("l.0.w", 1), ("l.1.w", 2)])).unwrap();
        let b = tree_unflatten(flat(&[("l.0.w", 10), ("l.1.v", 20)])).unwrap();
        let err = tree_zip(&a, &b).unwrap_err();
        assert!(err.message().contains("`l.1`"), "{err}");
        let zipped = tree_zip(&a, &a.map(|v| Ok(v * 10)).unwrap()).unwrap();
        assert_eq!(zipped.get_leaf("l.1.w"), Some(&(2, 20)));
    }

    #[test]
    fn merge_unites_and_reports_conflicts() {
        let a = tree_unflatten(flat(&[("m.a", 1), ("l.0", 1)])).unwrap();
        let b = tree_unflatten(flat(&[("m.b", 2), ("l.0", 5), ("l.1", 6)])).unwrap();
        let err = tree_merge(a.clone(), b.clone(), refuse_conflicts).unwrap_err();
        assert!(err.message().contains("`l.0`"), "{err}");
        let summed = tree_merge(a, b, |_, x, y| Ok(x + y)).unwrap();
        assert_eq!(tree_flatten(&summed), flat(&[("m.a", 1), ("m.b", 2), ("l.0", 6), ("l.1", 6)]));
    }
}
