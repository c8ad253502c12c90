//! Label subsets of a route's service: a fixed subset (`subset = { stage = "blue" }`) or a
//! weighted split (`split = [{ labels = …, weight = 90 }, …]`), with a header that lets a
//! tester pick a subset explicitly.

use http::{HeaderMap, HeaderName};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub type Labels = Vec<(String, String)>;

#[derive(Debug)]
pub struct SubsetSelector {
    fixed: Option<Labels>,
    split: Vec<(Labels, u32)>,
    total: u64,
    /// Requests so far: walking the cumulative weights with it gives exact proportions.
    counter: AtomicU64,
    header: HeaderName,
}

fn labels(map: &BTreeMap<String, String>) -> Labels {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl SubsetSelector {
    pub fn new(config: &super::RouteConfig) -> Option<SubsetSelector> {
        let fixed = (!config.subset.get_ref().is_empty()).then(|| labels(config.subset.get_ref()));
        let split: Vec<(Labels, u32)> = config
            .split
            .get_ref()
            .iter()
            .map(|s| (labels(&s.labels), s.weight))
            .collect();
        if fixed.is_none() && split.is_empty() {
            return None;
        }
        let total = split.iter().map(|(_, w)| *w as u64).sum();
        Some(SubsetSelector {
            fixed,
            split,
            total,
            counter: AtomicU64::new(0),
            header: HeaderName::from_bytes(config.subset_header.as_bytes()).ok()?,
        })
    }

    /// The labels this request's endpoint must carry. The tester header wins when it names
    /// something; then the fixed subset; then the split, by weight.
    pub fn choose(&self, headers: &HeaderMap) -> Option<std::borrow::Cow<'_, Labels>> {
        use std::borrow::Cow;
        if let Some(wanted) = headers.get(&self.header).and_then(|v| v.to_str().ok()) {
            if wanted.contains('=') {
                let pairs: Labels = wanted
                    .split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Some(Cow::Owned(pairs));
            }
            let named = self
                .split
                .iter()
                .map(|(l, _)| l)
                .chain(self.fixed.as_ref())
                .find(|l| l.iter().any(|(_, v)| v == wanted));
            if let Some(l) = named {
                return Some(Cow::Borrowed(l));
            }
        }
        if let Some(fixed) = &self.fixed {
            return Some(Cow::Borrowed(fixed));
        }
        if self.total == 0 {
            return None;
        }
        let mut point = self.counter.fetch_add(1, Ordering::Relaxed) % self.total;
        for (l, w) in &self.split {
            if point < *w as u64 {
                return Some(Cow::Borrowed(l));
            }
            point -= *w as u64;
        }
        None
    }
}
