//! A byte-wise radix tree of path prefixes. Lookup walks the request path once and yields the
//! matching prefixes from longest to shortest without allocating, so its cost depends on the
//! path's length, not on how many routes exist.

const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
struct Node {
    label: Box<[u8]>,
    /// Children as (first byte of label, node), sorted by that byte; siblings never share
    /// it. Keeping the byte here means a lookup touches only the parent to pick a child.
    children: Vec<(u8, u32)>,
    /// Values stored at exactly this prefix.
    values: Vec<u32>,
    /// The nearest ancestor that holds values: where to fall back when these don't fit.
    fallback: u32,
    /// Length of the whole prefix this node stands for.
    depth: usize,
}

#[derive(Debug)]
pub struct RadixTree {
    nodes: Vec<Node>,
}

impl Default for RadixTree {
    fn default() -> Self {
        RadixTree {
            nodes: vec![Node {
                fallback: NONE,
                ..Node::default()
            }],
        }
    }
}

impl RadixTree {
    pub fn insert(&mut self, key: &[u8], value: u32) {
        let mut node = 0usize;
        let mut rest = key;
        loop {
            if rest.is_empty() {
                self.nodes[node].values.push(value);
                return;
            }
            match self.child(node, rest[0]) {
                None => {
                    let new = self.push(rest.into());
                    self.nodes[new].values.push(value);
                    self.attach(node, new);
                    return;
                }
                Some(child) => {
                    let label = &self.nodes[child].label;
                    let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
                    if common < label.len() {
                        // Split: a new node for the shared part takes the child's place.
                        let shared: Box<[u8]> = label[..common].into();
                        let tail: Box<[u8]> = label[common..].into();
                        let mid = self.push(shared);
                        self.nodes[child].label = tail;
                        let first = self.nodes[child].label[0];
                        self.nodes[mid].children.push((first, child as u32));
                        let slot = self.nodes[node]
                            .children
                            .iter()
                            .position(|&(_, c)| c as usize == child)
                            .expect("child is listed under its parent");
                        self.nodes[node].children[slot].1 = mid as u32;
                        node = mid;
                    } else {
                        node = child;
                    }
                    rest = &rest[common..];
                }
            }
        }
    }

    /// Like [`Self::finish`], first putting each node's values in the order `order` gives.
    pub fn finish_with(&mut self, mut order: impl FnMut(&mut Vec<u32>)) {
        for node in &mut self.nodes {
            order(&mut node.values);
        }
        self.finish();
    }

    /// Links every node to its nearest ancestor with values. Call once after all inserts.
    pub fn finish(&mut self) {
        let mut stack = vec![(0usize, NONE, 0usize)];
        while let Some((node, inherited, parent_depth)) = stack.pop() {
            let depth = parent_depth + self.nodes[node].label.len();
            self.nodes[node].fallback = inherited;
            self.nodes[node].depth = depth;
            let next = if self.nodes[node].values.is_empty() {
                inherited
            } else {
                node as u32
            };
            for &(_, c) in &self.nodes[node].children {
                stack.push((c as usize, next, depth));
            }
        }
    }

    /// The values of every stored prefix of `path`, longest prefix first; each item is the
    /// prefix length and the values stored there.
    pub fn matches<'a>(&'a self, path: &[u8]) -> Matches<'a> {
        let mut node = 0usize;
        let mut best = if self.nodes[0].values.is_empty() {
            NONE
        } else {
            0
        };
        let mut rest = path;
        while let Some(&first) = rest.first() {
            let Some(child) = self.child(node, first) else {
                break;
            };
            let label = &self.nodes[child].label;
            if !rest.starts_with(label) {
                break;
            }
            rest = &rest[label.len()..];
            node = child;
            if !self.nodes[child].values.is_empty() {
                best = child as u32;
            }
        }
        Matches {
            tree: self,
            next: best,
        }
    }

    fn child(&self, node: usize, first: u8) -> Option<usize> {
        let children = &self.nodes[node].children;
        children
            .binary_search_by_key(&first, |&(b, _)| b)
            .ok()
            .map(|i| children[i].1 as usize)
    }

    fn push(&mut self, label: Box<[u8]>) -> usize {
        self.nodes.push(Node {
            label,
            fallback: NONE,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn attach(&mut self, parent: usize, child: usize) {
        let first = self.nodes[child].label[0];
        let children = &mut self.nodes[parent].children;
        let pos = children.partition_point(|&(b, _)| b < first);
        children.insert(pos, (first, child as u32));
    }
}

pub struct Matches<'a> {
    tree: &'a RadixTree,
    next: u32,
}

impl<'a> Iterator for Matches<'a> {
    type Item = (usize, &'a [u32]);

    fn next(&mut self) -> Option<Self::Item> {
        let node = self.tree.nodes.get(self.next as usize)?;
        self.next = node.fallback;
        Some((node.depth, &node.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(t: &RadixTree, path: &str) -> Vec<(usize, Vec<u32>)> {
        t.matches(path.as_bytes())
            .map(|(d, v)| (d, v.to_vec()))
            .collect()
    }

    #[test]
    fn longest_prefix_first_then_shorter() {
        let mut t = RadixTree::default();
        for (i, p) in ["/", "/api/", "/api/v1/", "/apix", "/b"].iter().enumerate() {
            t.insert(p.as_bytes(), i as u32);
        }
        t.insert(b"/api/", 9);
        t.finish();
        assert_eq!(
            collect(&t, "/api/v1/users"),
            vec![(8, vec![2]), (5, vec![1, 9]), (1, vec![0])]
        );
        assert_eq!(collect(&t, "/apix/1"), vec![(5, vec![3]), (1, vec![0])]);
        assert_eq!(collect(&t, "/ap"), vec![(1, vec![0])]);
        assert_eq!(collect(&t, "/c"), vec![(1, vec![0])]);
    }

    #[test]
    fn no_root_no_match() {
        let mut t = RadixTree::default();
        t.insert(b"/x/", 1);
        t.finish();
        assert!(collect(&t, "/y").is_empty());
        assert_eq!(collect(&t, "/x/"), vec![(3, vec![1])]);
    }

    #[test]
    fn many_prefixes() {
        let mut t = RadixTree::default();
        for i in 0..10_000u32 {
            t.insert(format!("/svc{i}/api/").as_bytes(), i);
        }
        t.finish();
        for i in (0..10_000u32).step_by(997) {
            let path = format!("/svc{i}/api/items");
            assert_eq!(collect(&t, &path), vec![(path.len() - 5, vec![i])]);
        }
    }
}
