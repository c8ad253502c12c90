//! Label subsets of a route's service: a fixed subset (`subset = { stage = "blue" }`) or a
//! weighted split (`split = [{ labels = …, weight = 90 }, …]`), with a header that lets a
//! tester pick a subset explicitly.

use http::{HeaderMap, HeaderName};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub type Labels = Vec<(String, String)>;

/// The subset chosen for a request, and its name for metrics (`stage=green`; `override`
/// for label pairs a tester sent that the config does not name).
pub struct Chosen<'a> {
    pub labels: std::borrow::Cow<'a, Labels>,
    pub name: &'a str,
}

impl<'a> Chosen<'a> {
    fn of(labels: &'a Labels, name: &'a str) -> Chosen<'a> {
        Chosen {
            labels: std::borrow::Cow::Borrowed(labels),
            name,
        }
    }
}

#[derive(Debug)]
pub struct SubsetSelector {
    fixed: Option<(Labels, String)>,
    split: Vec<(Labels, u32, String)>,
    /// One cycle of split indices in smooth weighted round-robin order (nginx's): exact
    /// proportions over each cycle, and interleaved — 50/50 alternates, 90/10 sends every
    /// tenth request to the small side instead of ten in a row.
    schedule: Vec<u16>,
    /// Requests so far: the position in the schedule.
    counter: AtomicU64,
    header: HeaderName,
}

fn labels(map: &BTreeMap<String, String>) -> Labels {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn name(labels: &Labels) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

impl SubsetSelector {
    pub fn new(config: &crate::config::RouteConfig) -> Option<SubsetSelector> {
        let fixed = (!config.subset.get_ref().is_empty()).then(|| {
            let l = labels(config.subset.get_ref());
            let n = name(&l);
            (l, n)
        });
        let split: Vec<(Labels, u32, String)> = config
            .split
            .get_ref()
            .iter()
            .map(|s| {
                let l = labels(&s.labels);
                let n = name(&l);
                (l, s.weight, n)
            })
            .collect();
        if fixed.is_none() && split.is_empty() {
            return None;
        }
        let schedule = smooth_schedule(&split.iter().map(|(_, w, _)| *w).collect::<Vec<_>>());
        Some(SubsetSelector {
            fixed,
            split,
            schedule,
            counter: AtomicU64::new(0),
            header: HeaderName::from_bytes(config.subset_header.as_bytes()).ok()?,
        })
    }

    /// The subset names this selector can send requests to (for metrics declared at zero).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fixed
            .iter()
            .map(|(_, n)| n.as_str())
            .chain(self.split.iter().map(|(_, _, n)| n.as_str()))
    }

    /// The labels this request's endpoint must carry. The tester header wins when it names
    /// something; then the fixed subset; then the split, by weight.
    pub fn choose(&self, headers: &HeaderMap) -> Option<Chosen<'_>> {
        use std::borrow::Cow;
        if let Some(wanted) = headers.get(&self.header).and_then(|v| v.to_str().ok()) {
            let named = self
                .split
                .iter()
                .map(|(l, _, n)| (l, n))
                .chain(self.fixed.as_ref().map(|(l, n)| (l, n)))
                .find(|(l, n)| *n == wanted || l.iter().any(|(_, v)| v == wanted));
            if let Some(found) = named {
                return Some(Chosen::of(found.0, found.1));
            }
            if wanted.contains('=') {
                let pairs: Labels = wanted
                    .split(',')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Some(Chosen {
                    labels: Cow::Owned(pairs),
                    name: "override",
                });
            }
        }
        if let Some((l, n)) = &self.fixed {
            return Some(Chosen::of(l, n));
        }
        if self.schedule.is_empty() {
            return None;
        }
        let at = self.counter.fetch_add(1, Ordering::Relaxed) % self.schedule.len() as u64;
        let (l, _, n) = &self.split[self.schedule[at as usize] as usize];
        Some(Chosen::of(l, n))
    }
}

/// Smooth weighted round robin over `weights` (reduced by their common divisor): each step
/// every entry gains its weight, the largest is chosen and loses the total.
fn smooth_schedule(weights: &[u32]) -> Vec<u16> {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let divisor = weights
        .iter()
        .map(|w| *w as u64)
        .filter(|w| *w > 0)
        .fold(0, gcd);
    if divisor == 0 {
        return Vec::new();
    }
    let reduced: Vec<i64> = weights
        .iter()
        .map(|w| (*w as u64 / divisor) as i64)
        .collect();
    let total: i64 = reduced.iter().sum();
    // Weights like 9999/1 would make a long cycle; proportions stay exact up to this length.
    let total = total.min(100_000);
    let mut current = vec![0i64; reduced.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&reduced) {
            *c += w;
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("at least one weight");
        current[best] -= reduced.iter().sum::<i64>();
        out.push(best as u16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::smooth_schedule;

    #[test]
    fn splits_interleave_with_exact_proportions() {
        assert_eq!(smooth_schedule(&[50, 50]), vec![0, 1]);
        let s = smooth_schedule(&[90, 10]);
        assert_eq!(s.len(), 10);
        assert_eq!(s.iter().filter(|i| **i == 1).count(), 1);
        let s = smooth_schedule(&[5, 1, 1]);
        assert_eq!(s, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[100, 0]), vec![0]);
        assert!(smooth_schedule(&[0, 0]).is_empty());
    }
}
