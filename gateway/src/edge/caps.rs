//! Connection caps: a global cap on client connections and a cap per client address, so a
//! flood from one address (or from everywhere) is refused at accept, cheaply, while the
//! connections already established keep being served.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SHARDS: usize = 16;

/// Open connections, in total and per client address.
#[derive(Default)]
pub struct Caps {
    total: AtomicUsize,
    per_ip: [Mutex<FxHashMap<IpAddr, usize>>; SHARDS],
}

/// Why a connection was refused; the `reason` label of `tidegate_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    MaxConnections,
    PerIp,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::MaxConnections => "max_connections",
            Refused::PerIp => "max_connections_per_ip",
        }
    }
}

/// A connection counted against the caps until it is dropped.
pub struct Slot {
    caps: Arc<Caps>,
    ip: Option<IpAddr>,
}

impl Caps {
    fn shard(&self, ip: &IpAddr) -> &Mutex<FxHashMap<IpAddr, usize>> {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(*v4) as usize,
            IpAddr::V6(v6) => (u128::from(*v6) as usize) ^ ((u128::from(*v6) >> 64) as usize),
        };
        &self.per_ip[h.wrapping_mul(0x9e37_79b9) % SHARDS]
    }

    /// Counts a new connection, or refuses it. `max` 0 is no cap; `ip` None is not capped
    /// per address.
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        max: usize,
        max_per_ip: usize,
    ) -> Result<Slot, Refused> {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        if max > 0 && total > max {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::MaxConnections);
        }
        let counted = match ip {
            Some(ip) if max_per_ip > 0 => {
                let mut map = self.shard(&ip).lock();
                let n = map.entry(ip).or_insert(0);
                if *n >= max_per_ip {
                    drop(map);
                    self.total.fetch_sub(1, Ordering::Relaxed);
                    return Err(Refused::PerIp);
                }
                *n += 1;
                Some(ip)
            }
            _ => None,
        };
        Ok(Slot {
            caps: self.clone(),
            ip: counted,
        })
    }

    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut map = self.caps.shard(&ip).lock();
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_total_and_per_address() {
        let caps = Arc::new(Caps::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = caps.admit(Some(a), 3, 2).unwrap();
        let _second = caps.admit(Some(a), 3, 2).unwrap();
        assert_eq!(caps.admit(Some(a), 3, 2).err(), Some(Refused::PerIp));
        let _other = caps.admit(Some(b), 3, 2).unwrap();
        assert_eq!(caps.admit(None, 3, 2).err(), Some(Refused::MaxConnections));
        drop(first);
        assert_eq!(caps.open(), 2);
        let _again = caps.admit(Some(a), 4, 2).unwrap();
        assert_eq!(caps.open(), 3);
    }
}
