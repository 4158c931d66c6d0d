//! Several servers (`--server` given more than once): the first is this agent's home, the others
//! are where it fails over to. A connection attempt that fails moves on to the next server in
//! the list (wrapping around); once a connection has served (it registered, or lasted), the
//! next attempt starts at home again, so an agent returns to its region when it can.

/// The servers of one agent and which one to try next.
#[derive(Debug, Clone)]
pub struct ServerList {
    urls: Vec<String>,
    next: usize,
}

impl ServerList {
    /// `urls` in order of preference; `None` when there is none.
    pub fn new(urls: Vec<String>) -> Option<Self> {
        (!urls.is_empty()).then_some(Self { urls, next: 0 })
    }

    /// The server to try now.
    pub fn current(&self) -> &str {
        &self.urls[self.next]
    }

    /// The attempt failed (or ended before it served): try the next server.
    pub fn failed(&mut self) {
        self.next = (self.next + 1) % self.urls.len();
    }

    /// The connection served and then ended: try home first.
    pub fn served(&mut self) {
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_walk_the_list_and_a_served_connection_returns_home() {
        let mut servers = ServerList::new(vec![
            "ws://fra".into(),
            "ws://iad".into(),
            "ws://sgp".into(),
        ])
        .expect("servers");
        let mut tried = vec![servers.current().to_owned()];
        for _ in 0..3 {
            servers.failed();
            tried.push(servers.current().to_owned());
        }
        assert_eq!(tried, ["ws://fra", "ws://iad", "ws://sgp", "ws://fra"]);
        servers.failed();
        assert_eq!(servers.current(), "ws://iad");
        servers.served();
        assert_eq!(servers.current(), "ws://fra");
        assert!(ServerList::new(Vec::new()).is_none());
    }
}
