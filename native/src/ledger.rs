//! The delivery ledger of `core/metrics/delivery.py`: sets of seqs as runs.

/// Sorted, disjoint, non-adjacent runs (the canonical form, as `SeqSet` keeps it).
#[derive(Default, Clone)]
pub struct SeqSet {
    pub runs: Vec<(i64, i64)>,
}

impl SeqSet {
    /// Add `first..=last`; returns how many were not there yet.
    pub fn add(&mut self, first: i64, last: i64) -> i64 {
        let runs = &mut self.runs;
        match runs.last_mut() {
            None => {
                runs.push((first, last));
                return last - first + 1;
            }
            Some(run) => {
                if first == run.1 + 1 {
                    run.1 = last;
                    return last - first + 1;
                }
                if first > run.1 + 1 {
                    runs.push((first, last));
                    return last - first + 1;
                }
            }
        }
        let low = runs.partition_point(|run| run.1 < first - 1);
        let high = runs.partition_point(|run| run.0 <= last + 1);
        if low == high {
            runs.insert(low, (first, last));
            return last - first + 1;
        }
        let mut present = 0;
        for run in &runs[low..high] {
            if run.0 <= last && run.1 >= first {
                present += run.1.min(last) - run.0.max(first) + 1;
            }
        }
        let merged = (first.min(runs[low].0), last.max(runs[high - 1].1));
        runs.splice(low..high, [merged]);
        last - first + 1 - present
    }

    pub fn remove(&mut self, first: i64, last: i64) {
        let runs = &mut self.runs;
        match runs.last() {
            None => return,
            Some(run) if first > run.1 => return,
            _ => {}
        }
        let low = runs.partition_point(|run| run.1 < first);
        let high = runs.partition_point(|run| run.0 <= last);
        if low >= high {
            return;
        }
        let mut kept: Vec<(i64, i64)> = Vec::with_capacity(2);
        if runs[low].0 < first {
            kept.push((runs[low].0, first - 1));
        }
        if runs[high - 1].1 > last {
            kept.push((last + 1, runs[high - 1].1));
        }
        runs.splice(low..high, kept);
    }

    pub fn last_end(&self) -> Option<i64> {
        self.runs.last().map(|run| run.1)
    }
}

#[derive(Default)]
pub struct Received {
    pub seqs: SeqSet,
    pub highest: i64,
    pub duplicated: i64,
    pub reordered: i64,
}

impl Received {
    pub fn add(&mut self, first: i64, last: i64) {
        let highest = self.highest;
        if first > highest {
            let added = self.seqs.add(first, last);
            self.highest = last;
            self.duplicated += last - first + 1 - added;
            return;
        }
        let late_last = last.min(highest);
        let late = self.seqs.add(first, late_last);
        self.reordered += late;
        let mut added = late;
        if last > highest {
            added += self.seqs.add(highest + 1, last);
            self.highest = last;
        }
        self.duplicated += last - first + 1 - added;
    }
}

/// What reached one destination, by origin in order of first arrival.
pub struct Destination {
    pub node: u32,
    /// a gateway (else the cloud, which expects every source)
    pub gateway: bool,
    pub origins: Vec<u32>,
    pub received: Vec<Received>,
    /// origin node -> position in `received` (u32::MAX: none yet)
    pub index: Vec<u32>,
    /// forwards that arrived saying nothing of their readings (a Python node's, with an
    /// empty lineage): (forwarding origin, count), in order of first arrival
    pub without_lineage: Vec<(u32, i64)>,
}

pub struct Ledger {
    /// per origin node: (cause, seqs) of its readings' last drops
    pub dropped: Vec<Vec<(u8, SeqSet)>>,
    pub destinations: Vec<Destination>,
    /// node -> destination index (u32::MAX: not a destination)
    pub destination_of: Vec<u32>,
}

impl Ledger {
    pub fn new(nodes: usize) -> Ledger {
        Ledger {
            dropped: (0..nodes).map(|_| Vec::new()).collect(),
            destinations: Vec::new(),
            destination_of: vec![u32::MAX; nodes],
        }
    }

    pub fn add_destination(&mut self, node: u32, nodes: usize, gateway: bool) {
        self.destination_of[node as usize] = self.destinations.len() as u32;
        self.destinations.push(Destination {
            node,
            gateway,
            origins: Vec::new(),
            received: Vec::new(),
            index: vec![u32::MAX; nodes],
            without_lineage: Vec::new(),
        });
    }

    fn arrived(dropped: &mut [(u8, SeqSet)], first: i64, last: i64) {
        for (_, seqs) in dropped.iter_mut() {
            if let Some(end) = seqs.last_end() {
                if first <= end {
                    seqs.remove(first, last);
                }
            }
        }
    }

    /// Start loading what `arrive` at `node` from `origin` will touch (a hint).
    #[inline]
    pub fn prefetch(&self, node: u32, origin: u32) {
        let Some(&position) = self.destination_of.get(node as usize) else {
            return;
        };
        let Some(destination) = self.destinations.get(position as usize) else {
            return;
        };
        if let Some(&record) = destination.index.get(origin as usize) {
            if let Some(received) = destination.received.get(record as usize) {
                crate::engine::prefetch(received);
            }
        }
    }

    /// `arrive` for a reading (no lineage) or a forward with its lineage runs.
    pub fn arrive(
        &mut self,
        node: u32,
        origin: u32,
        seq: i64,
        sources: Option<&[(u32, i64, i64)]>,
    ) {
        let destination = &mut self.destinations[self.destination_of[node as usize] as usize];
        let mut one = [(origin, seq, seq)];
        let runs: &[(u32, i64, i64)] = match sources {
            None => {
                one[0] = (origin, seq, seq);
                &one
            }
            Some([]) => {
                match destination
                    .without_lineage
                    .iter_mut()
                    .find(|(o, _)| *o == origin)
                {
                    Some(entry) => entry.1 += 1,
                    None => destination.without_lineage.push((origin, 1)),
                }
                return;
            }
            Some(runs) => runs,
        };
        for &(source, first, last) in runs {
            let mut position = destination.index[source as usize];
            if position == u32::MAX {
                position = destination.received.len() as u32;
                destination.index[source as usize] = position;
                destination.origins.push(source);
                destination.received.push(Received::default());
            }
            destination.received[position as usize].add(first, last);
            let dropped = &mut self.dropped[source as usize];
            if !dropped.is_empty() {
                Self::arrived(dropped, first, last);
            }
        }
    }

    pub fn drop(&mut self, origin: u32, seq: i64, sources: Option<&[(u32, i64, i64)]>, cause: u8) {
        match sources {
            None => self.dropped_run(origin, seq, seq, cause),
            Some(runs) => {
                for &(source, first, last) in runs {
                    self.dropped_run(source, first, last, cause);
                }
            }
        }
    }

    fn dropped_run(&mut self, origin: u32, first: i64, last: i64, cause: u8) {
        let dropped = &mut self.dropped[origin as usize];
        let mut found = None;
        for (index, (other, seqs)) in dropped.iter_mut().enumerate() {
            if *other != cause {
                seqs.remove(first, last);
            } else {
                found = Some(index);
            }
        }
        let index = match found {
            Some(index) => index,
            None => {
                dropped.push((cause, SeqSet::default()));
                dropped.len() - 1
            }
        };
        dropped[index].1.add(first, last);
    }
}

// --- the summary (`DeliveryLedger.snapshot`) ---------------------------------------------------
impl SeqSet {
    /// How many of `first..=last` are in the set (`SeqSet.count_in`).
    pub fn count_in(&self, first: i64, last: i64) -> i64 {
        let runs = &self.runs;
        let low = runs.partition_point(|run| run.1 < first);
        let high = runs.partition_point(|run| run.0 <= last);
        (low..high)
            .map(|i| runs[i].1.min(last) - runs[i].0.max(first) + 1)
            .sum()
    }

    /// The runs of `1..=sent` that are not in the set (`_gaps`).
    fn gaps(&self, sent: i64) -> Vec<(i64, i64)> {
        let mut gaps = Vec::new();
        let mut expected = 1;
        for &(start, end) in &self.runs {
            if start > sent {
                break;
            }
            if start > expected {
                gaps.push((expected, start - 1));
            }
            expected = expected.max(end + 1);
        }
        if expected <= sent {
            gaps.push((expected, sent));
        }
        gaps
    }

    fn overlap(&self, runs: &[(i64, i64)]) -> i64 {
        runs.iter()
            .map(|&(first, last)| self.count_in(first, last))
            .sum()
    }
}

/// `LOST_CAUSES` of `core/metrics/delivery.py`, in order (the ledger's causes are the first
/// eight and `no_subscriber`).
pub const LOST_CAUSES: [&str; 13] = [
    "loss",
    "partition",
    "queue_overflow",
    "rejected",
    "node_down",
    "queue_full",
    "offline",
    "session_lost",
    "storage_full",
    "asleep",
    "no_subscriber",
    "pending",
    "unknown",
];
const PENDING: usize = 11;
const UNKNOWN: usize = 12;

/// A ledger cause (`sketch::CAUSES`) as its position in `LOST_CAUSES`.
fn lost_cause(cause: u8) -> usize {
    match cause {
        crate::sketch::NO_SUBSCRIBER => 10,
        crate::sketch::STORAGE_FULL => 8,
        crate::sketch::ASLEEP => 9,
        other => other as usize,
    }
}

/// One `Delivery`: sent, delivered, lost, duplicated, reordered, and the causes (positions
/// in `LOST_CAUSES`) that are not 0, in that order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    pub sent: i64,
    pub delivered: i64,
    pub lost: i64,
    pub duplicated: i64,
    pub reordered: i64,
    pub causes: Vec<(u8, i64)>,
}

/// An origin the ledger accounts for: its node, what it published, and whether it has a
/// topic (a sensor) and which.
pub struct Source<'a> {
    pub node: u32,
    pub sent: i64,
    pub topic: Option<&'a str>,
}

impl Ledger {
    /// `DeliveryLedger._flow` of one source at one destination.
    fn flow(&self, source: &Source, destination: usize, gateway: bool) -> Flow {
        let empty = Received::default();
        let here = &self.destinations[destination];
        let record = match here.index[source.node as usize] {
            u32::MAX => &empty,
            position => &here.received[position as usize],
        };
        let sent = source.sent;
        let delivered = if sent != 0 {
            record.seqs.count_in(1, sent)
        } else {
            0
        };
        let gaps = record.seqs.gaps(sent);
        let lost = sent - delivered;
        let mut causes = [0i64; 13];
        let dropped = &self.dropped[source.node as usize];
        for (cause, seqs) in dropped {
            causes[lost_cause(*cause)] = seqs.overlap(&gaps);
        }
        let mut accounted: i64 = causes.iter().sum();
        if !gateway {
            let mut pending = SeqSet::default();
            for other in &self.destinations {
                if !other.gateway {
                    continue;
                }
                let position = other.index[source.node as usize];
                if position != u32::MAX {
                    for &(first, last) in &other.received[position as usize].seqs.runs {
                        pending.add(first, last);
                    }
                }
            }
            for (_, seqs) in dropped {
                for &(first, last) in &seqs.runs {
                    pending.remove(first, last);
                }
            }
            causes[PENDING] = pending.overlap(&gaps);
            accounted += causes[PENDING];
        }
        causes[UNKNOWN] = lost - accounted;
        Flow {
            sent,
            delivered,
            lost,
            duplicated: record.duplicated,
            reordered: record.reordered,
            causes: causes
                .iter()
                .enumerate()
                .filter(|(_, &count)| count != 0)
                .map(|(cause, &count)| (cause as u8, count))
                .collect(),
        }
    }

    /// `DeliveryLedger.snapshot`: per destination (in order), the sources with a flow there
    /// and each flow's position in the returned list of distinct flows; per source, the
    /// destinations (gateways) its readings reached. `filters(destination)` are a
    /// gateway's subscriptions (None: the cloud, which expects every source with a topic).
    pub fn snapshot(
        &self,
        sources: &[Source],
        filters: &dyn Fn(u32) -> Option<Vec<String>>,
    ) -> Snapshot {
        let mut distinct: Vec<Flow> = Vec::new();
        let mut known: std::collections::HashMap<Flow, u32> = std::collections::HashMap::new();
        let mut tables = Vec::with_capacity(self.destinations.len());
        for (position, destination) in self.destinations.iter().enumerate() {
            let filters = filters(destination.node);
            let mut origins = Vec::new();
            let mut flows = Vec::new();
            for source in sources {
                if source.node == destination.node {
                    continue;
                }
                if destination.index[source.node as usize] == u32::MAX
                    && !expects(destination, filters.as_deref(), source)
                {
                    continue;
                }
                let flow = self.flow(source, position, destination.gateway);
                let index = match known.get(&flow) {
                    Some(&index) => index,
                    None => {
                        let index = distinct.len() as u32;
                        known.insert(flow.clone(), index);
                        distinct.push(flow);
                        index
                    }
                };
                origins.push(source.node);
                flows.push(index);
            }
            tables.push((destination.node, origins, flows));
        }
        let reached = sources
            .iter()
            .map(|source| {
                self.destinations
                    .iter()
                    .filter(|d| d.gateway && d.index[source.node as usize] != u32::MAX)
                    .map(|d| d.node)
                    .collect()
            })
            .collect();
        Snapshot {
            flows: distinct,
            tables,
            reached,
        }
    }
}

pub struct Snapshot {
    pub flows: Vec<Flow>,
    /// (destination node, origin nodes, their flows' positions in `flows`)
    pub tables: Vec<(u32, Vec<u32>, Vec<u32>)>,
    /// per source, the gateways its readings reached
    pub reached: Vec<Vec<u32>>,
}

/// `DeliveryLedger._expects`: whether a destination that received nothing from `source`
/// still has a flow from it.
fn expects(destination: &Destination, filters: Option<&[String]>, source: &Source) -> bool {
    if source.sent == 0 {
        return false;
    }
    let Some(topic) = source.topic else {
        return false;
    };
    match filters {
        None => !destination.gateway,
        Some(filters) => filters.iter().any(|filter| topic_matches(filter, topic)),
    }
}

/// `core.topics.topic_matches`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if filter == topic {
        return true;
    }
    let filter_levels: Vec<&str> = filter.split('/').collect();
    if topic.starts_with('$') && (filter_levels[0] == "+" || filter_levels[0] == "#") {
        return false;
    }
    let topic_levels: Vec<&str> = topic.split('/').collect();
    for (index, level) in filter_levels.iter().enumerate() {
        if *level == "#" {
            return true;
        }
        if index >= topic_levels.len() {
            return false;
        }
        if *level != "+" && *level != topic_levels[index] {
            return false;
        }
    }
    filter_levels.len() == topic_levels.len()
}
