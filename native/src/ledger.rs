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

    pub fn add_destination(&mut self, node: u32, nodes: usize) {
        self.destination_of[node as usize] = self.destinations.len() as u32;
        self.destinations.push(Destination {
            node,
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
