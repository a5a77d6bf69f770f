//! Pub/sub routing: which clients listen on which channels and patterns.
//! Messages are handed to each subscriber's connection as a [`Push`]; the
//! connection encodes them in its own protocol (RESP2 array, RESP3 push).

use std::collections::HashMap;

use bytes::Bytes;

use crate::client::{ClientState, Push};
use crate::glob::glob_match;
use crate::keyspace::{ClientId, Set};

/// Subscriptions by channel and by pattern.
#[derive(Debug, Default)]
pub struct PubSub {
    pub channels: HashMap<Bytes, Set<ClientId>>,
    pub patterns: HashMap<Bytes, Set<ClientId>>,
    /// SSUBSCRIBE's shard channels (a namespace of their own).
    pub shard: HashMap<Bytes, Set<ClientId>>,
}

/// The three kinds of subscription: channels (SUBSCRIBE), patterns
/// (PSUBSCRIBE), shard channels (SSUBSCRIBE). Each is a namespace of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    Channels,
    Patterns,
    Shard,
}

impl Namespace {
    pub const ALL: [Namespace; 3] = [Namespace::Channels, Namespace::Patterns, Namespace::Shard];
}

impl PubSub {
    fn subscribers_mut(&mut self, ns: Namespace) -> &mut HashMap<Bytes, Set<ClientId>> {
        match ns {
            Namespace::Channels => &mut self.channels,
            Namespace::Patterns => &mut self.patterns,
            Namespace::Shard => &mut self.shard,
        }
    }

    /// Subscribes `client` to `name` in `ns`.
    pub fn add(&mut self, ns: Namespace, client: ClientId, name: &Bytes) {
        self.subscribers_mut(ns)
            .entry(name.clone())
            .or_default()
            .insert(client);
    }

    /// Unsubscribes `client` from `name` in `ns`.
    pub fn remove(&mut self, ns: Namespace, client: ClientId, name: &Bytes) {
        let subs = self.subscribers_mut(ns);
        if let Some(s) = subs.get_mut(name) {
            s.swap_remove(&client);
            if s.is_empty() {
                subs.remove(name);
            }
        }
    }

    /// SPUBLISH: delivers `payload` to the shard channel's subscribers;
    /// returns how many.
    pub fn spublish(
        &self,
        channel: &Bytes,
        payload: &Bytes,
        clients: &HashMap<ClientId, ClientState>,
        current: &ClientState,
    ) -> usize {
        let Some(subs) = self.shard.get(channel) else {
            return 0;
        };
        for id in subs {
            let p = Push::ShardMessage {
                channel: channel.clone(),
                payload: payload.clone(),
            };
            if current.id == *id {
                current.push(p);
            } else if let Some(c) = clients.get(id) {
                c.push(p);
            }
        }
        subs.len()
    }

    /// Drops every subscription of `client`, looking through all of them
    /// (for a client whose own list was lost to a panic).
    pub fn forget(&mut self, client: ClientId) {
        for ns in Namespace::ALL {
            self.subscribers_mut(ns).retain(|_, s| {
                s.swap_remove(&client);
                !s.is_empty()
            });
        }
    }

    /// Delivers `payload` on `channel`; returns the number of receivers.
    /// `current` is the publishing client, which is not in `clients` while
    /// it executes.
    pub fn publish(
        &self,
        channel: &Bytes,
        payload: &Bytes,
        clients: &HashMap<ClientId, ClientState>,
        current: Option<&ClientState>,
        after: u64,
    ) -> usize {
        let send = |id: &ClientId, p: Push| {
            if let Some(cur) = current.filter(|c| c.id == *id) {
                cur.push(p);
            } else if let Some(c) = clients.get(id) {
                c.push(p);
            }
        };
        let mut n = 0;
        if let Some(subs) = self.channels.get(channel) {
            for id in subs {
                send(
                    id,
                    Push::Message {
                        pattern: None,
                        channel: channel.clone(),
                        payload: payload.clone(),
                        after,
                    },
                );
                n += 1;
            }
        }
        for (pat, subs) in &self.patterns {
            if glob_match(pat, channel, false) {
                for id in subs {
                    send(
                        id,
                        Push::Message {
                            pattern: Some(pat.clone()),
                            channel: channel.clone(),
                            payload: payload.clone(),
                            after,
                        },
                    );
                    n += 1;
                }
            }
        }
        n
    }
}
