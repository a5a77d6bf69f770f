//! Client-side caching (CLIENT TRACKING), as Redis 7.0 does it: which
//! clients may hold which keys in a local cache, and the invalidation
//! messages they get when a key changes.
//!
//! In the default mode the server remembers the keys each tracking client
//! read (the *tracking table*, keyed by name across databases, as Redis');
//! a change to one of them sends each of those clients one `invalidate`
//! message and forgets the key. In BCAST mode clients subscribe to key
//! prefixes instead, and get the keys changed under them in one message
//! per prefix after each batch of commands. Messages go out as RESP3 pushes,
//! or, redirected, to another connection (a RESP3 one, or a RESP2 one in
//! pub/sub mode, as `__redis__:invalidate` messages).
//!
//! In the write path this is a side channel: the keyspace lists the keys a
//! command changed (only while some client tracks), the engine turns them
//! into messages after the command, and a message can reach a client before
//! the log has the change, which is safe: a client that then reads the key
//! gets a reply that waits for the log like any other read of it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;

use crate::client::{ClientState, Push};
use crate::keyspace::ClientId;

/// One client's tracking mode (CLIENT TRACKING ON and its options).
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    /// Where its messages go (0: to the client itself).
    pub redirect: ClientId,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES (with OPTIN) / NO (with OPTOUT) for the next command.
    pub caching: bool,
    /// The redirection client went away.
    pub broken_redirect: bool,
    /// BCAST prefixes.
    pub prefixes: BTreeSet<Bytes>,
}

impl ClientTracking {
    /// Whether the keys its next read touches are remembered.
    fn remembers(&self) -> bool {
        // OPTIN: only with CACHING YES; OPTOUT: unless CACHING NO.
        let asked = if self.optin {
            self.caching
        } else if self.optout {
            !self.caching
        } else {
            true
        };
        !self.bcast && asked
    }
}

/// A BCAST prefix: its clients and the keys changed since its last message,
/// with who changed them (for NOLOOP).
#[derive(Debug, Default)]
struct Bcast {
    clients: BTreeSet<ClientId>,
    keys: BTreeMap<Bytes, Option<ClientId>>,
}

/// What one invalidation message says.
enum Invalidated {
    Keys(Vec<Bytes>),
    /// Everything (FLUSHALL, FLUSHDB).
    All,
}

/// The tracking state of the whole server.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Clients with tracking on.
    pub clients: HashMap<ClientId, ClientTracking>,
    /// Key → the default-mode clients that may cache it.
    table: HashMap<Bytes, HashSet<ClientId>>,
    /// Client ids in `table`, all keys together.
    items: u64,
    prefixes: BTreeMap<Bytes, Bcast>,
    /// A script ran a read command: its caller then tracks the script's
    /// declared keys (Redis' rule for scripts).
    pub script_read: bool,
    /// Rounds of table eviction that could not get under the limit.
    evict_rounds: u32,
    /// The client whose command runs, whose own messages go into its
    /// reply stream (`inline`) rather than through its push channel: as in
    /// Redis, those its command caused right after the command's reply,
    /// and those of the keys evicted before it ran before that reply.
    pub inline_for: Option<ClientId>,
    /// Messages for `inline_for`, for the engine to write out.
    pub inline: Vec<u8>,
}

/// RESP3's null, or RESP2's.
fn null(resp3: bool) -> &'static [u8] {
    if resp3 {
        b"_\r\n"
    } else {
        b"$-1\r\n"
    }
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

impl Tracking {
    /// Whether key changes matter: a client tracks, or the table still
    /// holds keys (of clients that turned tracking off: Redis keeps those
    /// until the keys change or a flush).
    pub fn is_on(&self) -> bool {
        !self.clients.is_empty() || !self.table.is_empty()
    }

    pub fn total_keys(&self) -> usize {
        self.table.len()
    }

    pub fn total_items(&self) -> u64 {
        self.items
    }

    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }

    /// CLIENT TRACKING ON: `mode`'s options replace the old ones; BCAST
    /// prefixes add to those already there.
    pub fn enable(&mut self, id: ClientId, mode: ClientTracking, prefixes: &[Bytes]) {
        let t = self.clients.entry(id).or_default();
        let kept_prefixes = std::mem::take(&mut t.prefixes);
        *t = ClientTracking {
            prefixes: kept_prefixes,
            ..mode
        };
        if t.bcast {
            let asked: Vec<Bytes> = if prefixes.is_empty() {
                vec![Bytes::new()]
            } else {
                prefixes.to_vec()
            };
            for p in asked {
                self.prefixes
                    .entry(p.clone())
                    .or_default()
                    .clients
                    .insert(id);
                t.prefixes.insert(p);
            }
        }
    }

    /// CLIENT TRACKING OFF, RESET, or the connection closed. Keys it read
    /// stay in the table until they change (as in Redis).
    pub fn disable(&mut self, id: ClientId) {
        let Some(t) = self.clients.remove(&id) else {
            return;
        };
        for p in &t.prefixes {
            if let Some(b) = self.prefixes.get_mut(p) {
                b.clients.remove(&id);
                if b.clients.is_empty() {
                    self.prefixes.remove(p);
                }
            }
        }
    }

    /// A BCAST prefix overlapping one of `asked` (or two of `asked`
    /// overlapping): Redis' error.
    pub fn prefix_collision(&self, id: ClientId, asked: &[Bytes]) -> Option<String> {
        let overlaps = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for (i, p) in asked.iter().enumerate() {
            if let Some(t) = self.clients.get(&id) {
                if let Some(old) = t.prefixes.iter().find(|old| overlaps(old, p)) {
                    return Some(format!(
                        "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                        shown(p),
                        shown(old)
                    ));
                }
            }
            if let Some(other) = asked[i + 1..].iter().find(|q| overlaps(p, q)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    shown(p),
                    shown(other)
                ));
            }
        }
        None
    }

    /// Whether `id`'s next read is remembered (default mode, and OPTIN /
    /// OPTOUT with CLIENT CACHING).
    pub fn remembers(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|t| t.remembers())
    }

    /// Remembers that `id` may cache `keys`.
    pub fn remember<'a>(&mut self, id: ClientId, keys: impl Iterator<Item = &'a Bytes>) {
        for k in keys {
            if self.table.entry(k.clone()).or_default().insert(id) {
                self.items += 1;
            }
        }
    }

    /// After a command other than CLIENT, outside MULTI: CLIENT CACHING
    /// applied to that command only.
    pub fn command_done(&mut self, id: ClientId) {
        if let Some(t) = self.clients.get_mut(&id) {
            t.caching = false;
        }
    }

    /// Sends the invalidations for `changed` keys (with whether a command
    /// changed each, rather than an expiry) and, with `flushed`, for every
    /// key. `by` made the changes (NOLOOP clients hear nothing of their own);
    /// `current` is the client taken out of `clients` while it runs.
    pub fn invalidate(
        &mut self,
        changed: Vec<(Bytes, bool)>,
        flushed: bool,
        by: Option<ClientId>,
        current: Option<&ClientState>,
        clients: &HashMap<ClientId, ClientState>,
    ) {
        let cur = by;
        let mut messages: Vec<(ClientId, Invalidated)> = Vec::new();
        if flushed {
            messages.extend(self.clients.keys().map(|&id| (id, Invalidated::All)));
            self.table.clear();
            self.items = 0;
        }
        for (key, by_command) in changed {
            for (p, b) in self.prefixes.iter_mut() {
                if key.starts_with(p) {
                    b.keys
                        .insert(key.clone(), if by_command { cur } else { None });
                }
            }
            let Some(ids) = self.table.remove(&key) else {
                continue;
            };
            self.items -= ids.len() as u64;
            for id in ids {
                let Some(t) = self.clients.get(&id) else {
                    continue;
                };
                if t.bcast || (t.noloop && Some(id) == cur) {
                    continue;
                }
                messages.push((id, Invalidated::Keys(vec![key.clone()])));
            }
        }
        for (id, what) in messages {
            self.send(id, &what, current, clients);
        }
    }

    /// BCAST: one message per prefix with the keys changed under it since
    /// the last broadcast (without a NOLOOP client's own changes).
    pub fn broadcast(
        &mut self,
        current: Option<&ClientState>,
        clients: &HashMap<ClientId, ClientState>,
    ) {
        let mut messages = Vec::new();
        for b in self.prefixes.values_mut() {
            if b.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut b.keys);
            for &id in &b.clients {
                let noloop = self.clients.get(&id).is_some_and(|t| t.noloop);
                let mine: Vec<Bytes> = keys
                    .iter()
                    .filter(|(_, by)| !(noloop && **by == Some(id)))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !mine.is_empty() {
                    messages.push((id, Invalidated::Keys(mine)));
                }
            }
        }
        for (id, what) in messages {
            self.send(id, &what, current, clients);
        }
    }

    /// tracking-table-max-keys: forgets keys (invalidating them) while the
    /// table is over `max`, up to an effort that grows each round that
    /// could not get under it (Redis' trackingLimitUsedSlots).
    pub fn limit(
        &mut self,
        max: usize,
        current: Option<&ClientState>,
        clients: &HashMap<ClientId, ClientState>,
    ) {
        if max == 0 || self.table.len() <= max {
            self.evict_rounds = 0;
            return;
        }
        let mut effort = 100 * (self.evict_rounds as usize + 1);
        while effort > 0 && self.table.len() > max {
            effort -= 1;
            let Some(key) = self.table.keys().next().cloned() else {
                break;
            };
            // Not anyone's change: NOLOOP clients hear of it too.
            self.invalidate(vec![(key, false)], false, None, current, clients);
        }
        if self.table.len() > max {
            self.evict_rounds += 1;
        } else {
            self.evict_rounds = 0;
        }
    }

    /// sendTrackingMessage: to the client, or where it redirects.
    fn send(
        &mut self,
        id: ClientId,
        what: &Invalidated,
        current: Option<&ClientState>,
        clients: &HashMap<ClientId, ClientState>,
    ) {
        let find = |id: ClientId| current.filter(|c| c.id == id).or_else(|| clients.get(&id));
        let Some(t) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(me) = find(id) else {
            return;
        };
        let target = if t.redirect != 0 {
            match find(t.redirect) {
                Some(r) => r,
                None => {
                    t.broken_redirect = true;
                    if me.resp3 {
                        let mut m = b">2\r\n$21\r\ntracking-redir-broken\r\n".to_vec();
                        m.extend_from_slice(format!(":{}\r\n", t.redirect).as_bytes());
                        me.push(Push::Raw(m));
                    }
                    return;
                }
            }
        } else {
            me
        };
        let mut m = Vec::new();
        if target.resp3 {
            m.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
        } else if t.redirect != 0 && target.subscribes() {
            m.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
        } else {
            // A RESP2 connection gets nothing unless it is redirected to.
            return;
        }
        match what {
            Invalidated::All => m.extend_from_slice(null(me.resp3)),
            Invalidated::Keys(keys) => {
                m.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
                for k in keys {
                    bulk(&mut m, k);
                }
            }
        }
        if self.inline_for == Some(target.id) {
            self.inline.extend_from_slice(&m);
        } else {
            target.push(Push::Raw(m));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn prefixes_must_not_overlap() {
        let mut t = Tracking::default();
        let bcast = ClientTracking {
            bcast: true,
            ..Default::default()
        };
        assert!(t.prefix_collision(1, &[b("a"), b("b")]).is_none());
        t.enable(1, bcast.clone(), &[b("a:")]);
        assert!(t.prefix_collision(1, &[b("a")]).is_some());
        assert!(t.prefix_collision(1, &[b("b"), b("bc")]).is_some());
        assert!(t.prefix_collision(2, &[b("a")]).is_none());
        t.enable(1, bcast, &[b("c:")]);
        assert_eq!(t.clients[&1].prefixes.len(), 2);
        assert_eq!(t.total_prefixes(), 2);
        t.disable(1);
        assert_eq!(t.total_prefixes(), 0);
    }

    #[test]
    fn changed_keys_leave_the_table_and_caching_flags_apply_once() {
        let mut t = Tracking::default();
        t.enable(
            1,
            ClientTracking {
                optin: true,
                ..Default::default()
            },
            &[],
        );
        assert!(!t.remembers(1));
        if let Some(c) = t.clients.get_mut(&1) {
            c.caching = true;
        }
        assert!(t.remembers(1));
        t.command_done(1);
        assert!(!t.remembers(1));
        t.remember(1, [b("k"), b("j")].iter());
        t.remember(2, [b("k")].iter());
        assert_eq!((t.total_keys(), t.total_items()), (2, 3));
        let clients = HashMap::new();
        t.invalidate(vec![(b("k"), true)], false, Some(1), None, &clients);
        assert_eq!((t.total_keys(), t.total_items()), (1, 1));
        t.invalidate(Vec::new(), true, None, None, &clients);
        assert_eq!((t.total_keys(), t.total_items()), (0, 0));
    }
}
