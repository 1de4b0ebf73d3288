//! The fault schedule, event for event as the pure engine applies it
//! (`core/fault_schedule.py` with the built-in kinds of `core/builtin_faults.py`; the
//! gateway's `core/models/store_forward.py`, the sensor's duty cycle and clock; a node's
//! life as `TopologyRun.fault` does it to `HostedGateway` and `BrokerModel`).
//!
//! Python resolves the plan (`core/native_faults.py`): each fault's trigger, what it acts
//! on (node and cut indices, the links a `link_change` touches), its fixed trace details,
//! and which faults an `after:` makes wait for it. Here a fault fires as a `FaultBegin`
//! event (once), ends as a `FaultEnd` event after its duration, and writes the same
//! `fault` trace line and applied-fault record as `FaultSchedule._fire` and `_end`.

use super::*;

/// What makes a fault fire.
pub enum Trigger {
    /// at this time (scheduled when the plan is armed, in plan order)
    At(Tick),
    /// only when a fault it comes `after:` starts or ends
    Dependent,
    /// when the node has taken its `count`-th PUBLISH, `delay` later
    Received { node: u32, count: i64, delay: Tick },
    /// when the link has dropped its `count`-th packet, `delay` later
    Dropped {
        src: u32,
        dst: u32,
        count: i64,
        delay: Tick,
    },
    /// when the gateway has subscribed for the `count`-th time (once at the start), `delay`
    /// later
    Subscribed { node: u32, count: i64, delay: Tick },
    /// never (a `when:` that cannot happen in this run)
    Never,
}

/// What a fault of a gateway's life does to it (`HostedGateway.apply_fault`).
#[derive(Clone, Copy, PartialEq)]
pub enum Life {
    Stop,
    Kill,
    Start,
    Restart,
    Disconnect,
    Reconnect,
    Pause,
    Resume,
}

/// What a fault does when it begins (and undoes when it ends).
#[derive(Clone)]
pub enum Action {
    /// `partition`, `isolate`: a cut goes down (heals at the end)
    Cut(u32),
    /// `link_change`: the links' profiles change (each gets its own back at the end)
    LinkChange {
        pairs: Vec<(u32, u32)>,
        latency: Option<Tick>,
        jitter: Option<Tick>,
        loss: Option<f64>,
        bandwidth: Option<i64>,
    },
    /// `backhaul_outage`: the gateway's uplink is cut and the gateway buffers
    Backhaul { gateway: u32, cut: u32 },
    /// `storage_full`: the gateway's buffer takes nothing more
    StorageFull(u32),
    /// `duty_cycle`: the sensors sleep except `awake` of every `period`
    DutyCycle {
        sensors: Vec<u32>,
        period: Tick,
        awake: Tick,
        buffer: bool,
    },
    /// `crash`, `restart`, `disconnect` of a gateway: `begin` now, `end` after the duration
    Life {
        gateway: u32,
        begin: Life,
        end: Life,
    },
    /// `crash`, `restart`, `broker_restart` of the broker (`persistence`: it keeps its
    /// retained messages)
    BrokerLife {
        begin: Life,
        end: Life,
        persistence: bool,
    },
    /// `clock_skew`: the sensors' clocks run `offset` ahead, `drift_ppm` fast
    ClockSkew {
        sensors: Vec<u32>,
        offset: Tick,
        drift_ppm: f64,
    },
}

pub struct Fault {
    /// the applied records' actions: the kind's name and `NAME:end`, or a node's life
    /// actions (`kill`, `start`, ...)
    pub name: String,
    pub end_name: String,
    pub target: String,
    pub duration: Option<Tick>,
    /// the record's detail where it does not depend on the run
    pub begin_detail: String,
    pub end_detail: String,
    pub trigger: Trigger,
    pub action: Action,
    /// the faults waiting for this one's start and end (`after:`), with their delays
    pub on_start: Vec<(u32, Tick)>,
    pub on_end: Vec<(u32, Tick)>,
}

/// `builtin_faults.DutyCycle`
#[derive(Clone, Copy)]
struct DutyCycle {
    since: Tick,
    period: Tick,
    awake: Tick,
    buffer: bool,
}

impl DutyCycle {
    fn wakes_at(&self, now: Tick) -> Tick {
        let phase = (now - self.since).rem_euclid(self.period);
        if phase < self.awake {
            now
        } else {
            now + self.period - phase
        }
    }
}

/// `builtin_faults.Clock`
#[derive(Clone, Copy)]
struct Clock {
    since: Tick,
    offset: Tick,
    drift_ppm: f64,
}

impl Clock {
    /// The virtual time at which the clock reads `reading`.
    fn when_it_reads(&self, reading: Tick) -> Tick {
        let rate = 1.0 + self.drift_ppm / 1e6;
        self.since + py_round((reading - self.offset - self.since) as f64 / rate)
    }
}

/// A gateway's uplink and store-and-forward buffer (`StoreAndForward`).
pub struct Store {
    /// `forward.buffer`: (capacity, drop newest); None: no buffer
    buffer: Option<(usize, bool)>,
    uplink_down: bool,
    storage_full: bool,
    waiting: VecDeque<Rc<Message>>,
    pub dropped: i64,
}

impl Store {
    pub fn buffered(&self) -> usize {
        self.waiting.len()
    }
}

/// A gateway's life (`HostedGateway`'s `_down`, `_connected` and `dropped_down`).
#[derive(Default)]
pub struct GatewayLife {
    pub down: bool,
    pub disconnected: bool,
    pub dropped_down: i64,
    paused: bool,
    /// what reached it while paused
    held: Vec<Packet>,
    /// after a pause: what fell due meanwhile goes out at the resume
    not_before: Tick,
}

/// A counted event some faults fire on: how often it happened, which faults watch it.
#[derive(Default)]
struct Watch {
    count: i64,
    faults: Vec<u32>,
}

pub struct Faults {
    faults: Vec<Fault>,
    fired: Vec<bool>,
    /// a `link_change`'s links with the profiles they had before it
    before: Vec<Vec<(u32, Rc<Profile>)>>,
    /// (time, action, target, detail) of every fault done, in order
    pub applied: Vec<(Tick, String, String, String)>,
    /// by gateway index
    pub stores: Vec<Store>,
    /// by gateway index
    pub lives: Vec<GatewayLife>,
    /// by sensor index
    duties: Vec<Option<DutyCycle>>,
    clocks: Vec<Option<Clock>>,
    held: Vec<Option<Vec<(Tick, f64)>>>,
    arrivals: IntMap<u32, Watch>,
    drops: IntMap<(u32, u32), Watch>,
    subscriptions: IntMap<u32, Watch>,
    pub broker: BrokerLife,
}

/// The broker's life (`BrokerModel`'s `up`, `_stale`, `dropped_down`, persistence).
#[derive(Default)]
pub struct BrokerLife {
    pub down: bool,
    /// routes scheduled before it went down, dying as they fall due
    stale: i64,
    pub dropped_down: i64,
    persistent_restart: bool,
    /// what a persistent restart kept (the retained topics)
    kept: Option<Vec<u32>>,
    paused: bool,
    held: Vec<Packet>,
    held_routes: Vec<Rc<Message>>,
}

impl Engine {
    /// Arm the schedule (`FaultSchedule.arm`, at the first run): `cuts` are the faults' cuts
    /// (made before any link opens, each link checks them from the start: a cut never down
    /// drops nothing), `buffers` each gateway's `forward.buffer`.
    pub fn arm_faults(
        &mut self,
        cuts: Vec<(Vec<u32>, Vec<u32>, bool)>,
        buffers: Vec<Option<(usize, bool)>>,
        faults: Vec<Fault>,
    ) {
        assert!(
            self.links.is_empty(),
            "faults are armed before any link opens"
        );
        let count = self.names.len();
        // the faults' cuts follow the scenario's partitions
        let base = self.cuts.len() as u32;
        let mut faults = faults;
        for fault in &mut faults {
            match &mut fault.action {
                Action::Cut(cut) | Action::Backhaul { cut, .. } => *cut += base,
                _ => {}
            }
        }
        for (side_a, side_b, one_way) in cuts {
            let mut a = vec![false; count];
            let mut b = vec![false; count];
            for node in side_a {
                a[node as usize] = true;
            }
            for node in side_b {
                b[node as usize] = true;
            }
            self.cuts.push(Cut {
                side_a: a,
                side_b: b,
                down_since: None,
                last_healed_at: -1,
                one_way,
            });
        }
        let mut state = Faults {
            fired: vec![false; faults.len()],
            before: (0..faults.len()).map(|_| Vec::new()).collect(),
            applied: Vec::new(),
            stores: buffers
                .into_iter()
                .map(|buffer| Store {
                    buffer,
                    uplink_down: false,
                    storage_full: false,
                    waiting: VecDeque::new(),
                    dropped: 0,
                })
                .collect(),
            lives: (0..self.gateways.len())
                .map(|_| GatewayLife::default())
                .collect(),
            duties: vec![None; self.sensors.len()],
            clocks: vec![None; self.sensors.len()],
            held: (0..self.sensors.len()).map(|_| None).collect(),
            arrivals: IntMap::default(),
            drops: IntMap::default(),
            subscriptions: IntMap::default(),
            broker: BrokerLife::default(),
            faults,
        };
        let now = self.now;
        let mut due = Vec::new();
        for (index, fault) in state.faults.iter().enumerate() {
            match fault.trigger {
                Trigger::At(at) => due.push((at.max(now), index as u32)),
                Trigger::Received { node, .. } => state
                    .arrivals
                    .entry(node)
                    .or_default()
                    .faults
                    .push(index as u32),
                Trigger::Dropped { src, dst, .. } => state
                    .drops
                    .entry((src, dst))
                    .or_default()
                    .faults
                    .push(index as u32),
                Trigger::Subscribed { node, .. } => {
                    // (a gateway connected at the start has subscribed once)
                    let watch = state.subscriptions.entry(node).or_insert(Watch {
                        count: 1,
                        faults: Vec::new(),
                    });
                    watch.faults.push(index as u32);
                }
                Trigger::Dependent | Trigger::Never => {}
            }
        }
        self.faults = Some(Box::new(state));
        for (at, index) in due {
            self.schedule(at, Event::FaultBegin(index));
        }
    }

    fn fault_state(&mut self) -> &mut Faults {
        self.faults.as_mut().expect("a fault schedule")
    }

    // --- firing -------------------------------------------------------------------------
    pub(super) fn fault_begin(&mut self, index: u32) {
        let state = self.fault_state();
        if state.fired[index as usize] {
            return;
        }
        state.fired[index as usize] = true;
        let detail = self.begin_action(index);
        let fault = &self.faults.as_ref().unwrap().faults[index as usize];
        let (name, duration) = (fault.name.clone(), fault.duration);
        self.record_fault(index, name, detail);
        let now = self.now;
        if let Some(duration) = duration {
            self.schedule(now + duration, Event::FaultEnd(index));
        }
        let waiting = self.faults.as_ref().unwrap().faults[index as usize]
            .on_start
            .clone();
        for (dependent, delay) in waiting {
            self.schedule(now + delay, Event::FaultBegin(dependent));
        }
    }

    pub(super) fn fault_end(&mut self, index: u32) {
        let detail = self.end_action(index);
        let name = self.fault_state().faults[index as usize].end_name.clone();
        self.record_fault(index, name, detail);
        let now = self.now;
        let waiting = self.fault_state().faults[index as usize].on_end.clone();
        for (dependent, delay) in waiting {
            self.schedule(now + delay, Event::FaultBegin(dependent));
        }
    }

    /// The `drop` trace line of a message a fault lost at `node` (from `peer`, if it came
    /// from one): its origin's message id and the cause.
    fn trace_drop(
        &mut self,
        node: u32,
        peer: Option<u32>,
        topic: u32,
        origin: u32,
        seq: i64,
        cause: &str,
    ) {
        if !self.tracer.enabled {
            return;
        }
        let peer = peer.map_or("", |peer| self.names[peer as usize].as_str());
        let line = self.tracer.begin(
            self.now,
            "drop",
            &self.names[node as usize],
            peer,
            &self.topics[topic as usize],
        );
        message_id(line, &self.names[origin as usize], seq);
        line.push('\t');
        line.push_str(cause);
        self.tracer.end();
    }

    /// `TopologyRun._applied`: the record and the `fault` trace line.
    fn record_fault(&mut self, index: u32, action: String, detail: String) {
        let now = self.now;
        let state = self.faults.as_mut().unwrap();
        let target = state.faults[index as usize].target.clone();
        if self.tracer.enabled {
            let line = self.tracer.begin(now, "fault", &target, "", "");
            line.push_str(&action);
            line.push('\t');
            line.push_str(&detail);
            self.tracer.end();
        }
        state.applied.push((now, action, target, detail));
    }

    fn begin_action(&mut self, index: u32) -> String {
        let now = self.now;
        let fault = &self.fault_state().faults[index as usize];
        let (detail, action) = (fault.begin_detail.clone(), fault.action.clone());
        match action {
            Action::Cut(cut) => self.cut_down(cut),
            Action::LinkChange {
                pairs,
                latency,
                jitter,
                loss,
                bandwidth,
            } => {
                let mut before = Vec::with_capacity(pairs.len());
                for &(src, dst) in &pairs {
                    let link = self.link_for(src, dst);
                    before.push((link, self.links[link as usize].profile.clone()));
                }
                for &(link, ref old) in &before {
                    let mut profile = Profile::clone(old);
                    if let Some(latency) = latency {
                        profile.latency = latency;
                    }
                    if let Some(jitter) = jitter {
                        profile.jitter = if jitter > 0 {
                            Jitter::Uniform
                        } else {
                            Jitter::None
                        };
                        profile.jitter_ticks = jitter;
                    }
                    if let Some(loss) = loss {
                        profile.loss = if loss > 0.0 {
                            Loss::Bernoulli
                        } else {
                            Loss::None
                        };
                        profile.loss_rate = loss;
                    }
                    if let Some(bandwidth) = bandwidth {
                        profile.bandwidth_bps = bandwidth;
                    }
                    self.links[link as usize].profile = Rc::new(profile);
                }
                self.fault_state().before[index as usize] = before;
            }
            Action::Backhaul { gateway, cut } => {
                self.cut_down(cut);
                self.fault_state().stores[gateway as usize].uplink_down = true;
            }
            Action::StorageFull(gateway) => {
                self.fault_state().stores[gateway as usize].storage_full = true;
            }
            Action::DutyCycle {
                sensors,
                period,
                awake,
                buffer,
            } => {
                let cycle = DutyCycle {
                    since: now,
                    period,
                    awake,
                    buffer,
                };
                let state = self.fault_state();
                for sensor in sensors {
                    state.duties[sensor as usize] = Some(cycle);
                }
            }
            // (the first form's timed reconnection says when, after what the action cost)
            Action::Life { gateway, begin, .. } => {
                return joined(self.life(gateway, begin), detail);
            }
            Action::BrokerLife {
                begin, persistence, ..
            } => {
                if persistence {
                    self.fault_state().broker.persistent_restart = true;
                }
                return joined(self.broker_life(begin), detail);
            }
            Action::ClockSkew {
                sensors,
                offset,
                drift_ppm,
            } => {
                let clock = Clock {
                    since: now,
                    offset,
                    drift_ppm,
                };
                let state = self.fault_state();
                for sensor in sensors {
                    state.clocks[sensor as usize] = Some(clock);
                }
            }
        }
        detail
    }

    fn end_action(&mut self, index: u32) -> String {
        let fault = &self.fault_state().faults[index as usize];
        let (detail, action) = (fault.end_detail.clone(), fault.action.clone());
        match action {
            Action::Cut(cut) => self.cut_up(cut),
            Action::LinkChange { .. } => {
                let before = std::mem::take(&mut self.fault_state().before[index as usize]);
                for (link, profile) in before {
                    self.links[link as usize].profile = profile;
                }
            }
            Action::Backhaul { gateway, cut } => {
                self.cut_up(cut);
                let store = &mut self.fault_state().stores[gateway as usize];
                store.uplink_down = false;
                let waiting = std::mem::take(&mut store.waiting);
                let sent = waiting.len();
                for message in waiting {
                    self.forward_held(gateway, message);
                }
                return if sent > 0 {
                    format!("sent {} buffered", sent)
                } else {
                    String::new()
                };
            }
            Action::StorageFull(gateway) => {
                self.fault_state().stores[gateway as usize].storage_full = false;
            }
            Action::DutyCycle { sensors, .. } => {
                for sensor in sensors {
                    self.fault_state().duties[sensor as usize] = None;
                    self.wake(sensor);
                }
            }
            Action::ClockSkew { sensors, .. } => {
                let state = self.fault_state();
                for sensor in sensors {
                    state.clocks[sensor as usize] = None;
                }
            }
            Action::Life { gateway, end, .. } => return self.life(gateway, end),
            Action::BrokerLife { end, .. } => return self.broker_life(end),
        }
        detail
    }

    fn cut_down(&mut self, cut: u32) {
        let now = self.now;
        let cut = &mut self.cuts[cut as usize];
        if cut.down_since.is_none() {
            cut.down_since = Some(now);
        }
    }

    fn cut_up(&mut self, cut: u32) {
        let now = self.now;
        let cut = &mut self.cuts[cut as usize];
        if cut.down_since.is_some() {
            cut.down_since = None;
            cut.last_healed_at = now;
        }
    }

    // --- `when:` triggers ---------------------------------------------------------------
    /// A PUBLISH reached `node` (after the node took it: `_ArrivalTap.on_packet`).
    pub(super) fn arrived_at(&mut self, node: u32) {
        let state = self.faults.as_mut().unwrap();
        let Some(watch) = state.arrivals.get_mut(&node) else {
            return;
        };
        watch.count += 1;
        let count = watch.count;
        let watchers = watch.faults.clone();
        self.counted(&watchers, count);
    }

    /// The link `src -> dst` dropped a packet (`NetworkModel._dropped_on`).
    pub(super) fn dropped_on(&mut self, src: u32, dst: u32) {
        let state = self.faults.as_mut().unwrap();
        let Some(watch) = state.drops.get_mut(&(src, dst)) else {
            return;
        };
        watch.count += 1;
        let count = watch.count;
        let watchers = watch.faults.clone();
        self.counted(&watchers, count);
    }

    fn counted(&mut self, watchers: &[u32], count: i64) {
        let now = self.now;
        for &index in watchers {
            let state = self.faults.as_ref().unwrap();
            let (wanted, delay) = match state.faults[index as usize].trigger {
                Trigger::Received { count, delay, .. }
                | Trigger::Dropped { count, delay, .. }
                | Trigger::Subscribed { count, delay, .. } => (count, delay),
                _ => unreachable!("a watcher counts"),
            };
            if count == wanted && !state.fired[index as usize] {
                self.schedule(now + delay, Event::FaultBegin(index));
            }
        }
    }

    // --- the gateway's store-and-forward buffer ------------------------------------------
    /// `StoreAndForward.takes`: whether the buffer took the forward (kept or lost).
    pub(super) fn store_takes(&mut self, gateway: u32, message: &Rc<Message>) -> bool {
        let store = &mut self.fault_state().stores[gateway as usize];
        if !store.uplink_down {
            return false;
        }
        let Some((capacity, drop_newest)) = store.buffer else {
            return false;
        };
        if store.storage_full || store.waiting.len() >= capacity {
            if store.storage_full || drop_newest || store.waiting.is_empty() {
                self.lose_stored(gateway, message);
                return true;
            }
            let oldest = store.waiting.pop_front().unwrap();
            self.lose_stored(gateway, &oldest);
        }
        self.fault_state().stores[gateway as usize]
            .waiting
            .push_back(message.clone());
        true
    }

    fn lose_stored(&mut self, gateway: u32, message: &Message) {
        self.fault_state().stores[gateway as usize].dropped += 1;
        let node = self.gateways[gateway as usize].node;
        let cause = sketch::STORAGE_FULL;
        self.ledger.drop(
            message.origin,
            message.seq,
            message.sources.as_deref().map(|v| v.as_slice()),
            cause,
        );
        self.node_counters[node as usize].drop(cause);
        self.topic_counter(message.topic).drop(cause);
        self.trace_drop(
            node,
            None,
            message.topic,
            message.origin,
            message.seq,
            "storage_full",
        );
    }

    /// The uplink is back: a forward that waited goes out (`Session.publish`).
    fn forward_held(&mut self, gateway: u32, message: Rc<Message>) {
        let gateway = &self.gateways[gateway as usize];
        let (node, to) = (gateway.node, gateway.spec.forward_to);
        let qos = message.qos;
        self.publish(node, to, message, qos);
    }

    // --- the sensor's duty cycle and clock ----------------------------------------------
    pub(super) fn sensor_faulted(&self, sensor: u32) -> bool {
        let state = self.faults.as_ref().unwrap();
        state.duties[sensor as usize].is_some() || state.clocks[sensor as usize].is_some()
    }

    /// `SensorModel._publish_faulted`: due now; awake, it goes out; asleep, it is kept for
    /// the wake or lost.
    pub(super) fn sensor_publish_faulted(&mut self, index: u32) {
        let now = self.now;
        let value = self.sensors[index as usize].value.next(now);
        let state = self.faults.as_mut().unwrap();
        let duty = state.duties[index as usize];
        let wakes_at = duty.map_or(now, |duty| duty.wakes_at(now));
        if wakes_at == now {
            self.sensor_emit(index, now, value, now);
        } else if duty.is_some_and(|duty| duty.buffer) {
            let held = &mut state.held[index as usize];
            let first = held.as_ref().map_or(true, |held| held.is_empty());
            held.get_or_insert_with(Vec::new).push((now, value));
            if first {
                self.schedule(wakes_at, Event::Wake(index));
            }
        } else {
            self.lose_asleep(index);
        }
        match self.fault_state().clocks[index as usize] {
            None => self.schedule_next_publish(index, now),
            Some(clock) => self.schedule_next_on_clock(index, now, clock),
        }
    }

    /// The next reading on the sensor's own clock (`_publish_faulted`'s schedule).
    fn schedule_next_on_clock(&mut self, index: u32, now: Tick, clock: Clock) {
        let sensor = &mut self.sensors[index as usize];
        let spec = self.sensor_specs[sensor.spec as usize];
        let mut following = if spec.periodic {
            sensor.cycle += 1;
            let mut nominal = sensor.first + sensor.cycle * spec.period;
            if spec.jitter != 0 {
                nominal += py_round(spec.jitter as f64 * (2.0 * sensor.stream.random() - 1.0));
            }
            clock.when_it_reads(nominal.max(spec.start))
        } else {
            let gap = sensor.stream.exponential(sensor.mean_gap) / (1.0 + clock.drift_ppm / 1e6);
            now + py_round(gap).max(1)
        };
        if following <= now {
            following = now + 1;
        }
        if spec.stop.map_or(true, |stop| following < stop) {
            self.schedule(following, Event::Publish(index));
        }
    }

    /// `SensorModel._wake`: what it kept goes out now, oldest first.
    pub(super) fn wake(&mut self, index: u32) {
        let now = self.now;
        let held = self.fault_state().held[index as usize].take();
        for (created_at, value) in held.unwrap_or_default() {
            self.sensor_emit(index, now, value, created_at);
        }
    }

    /// `SensorModel._lose_asleep`: a reading due asleep on a cycle that drops them.
    fn lose_asleep(&mut self, index: u32) {
        let sensor = &mut self.sensors[index as usize];
        sensor.published += 1;
        let (seq, node, topic) = (sensor.published, sensor.node, sensor.topic);
        let cause = sketch::ASLEEP;
        let counter = self.topic_counter(topic);
        counter.sent += 1;
        counter.drop(cause);
        self.node_counters[node as usize].drop(cause);
        self.ledger.drop(node, seq, None, cause);
        self.trace_drop(node, Some(self.broker), topic, node, seq, "asleep");
    }
}

// --- a gateway's life ------------------------------------------------------------------------
impl Engine {
    /// `TopologyRun.fault(action, gateway)`: what it cost, for the record.
    fn life(&mut self, gateway: u32, action: Life) -> String {
        match action {
            Life::Stop => self.go_down(gateway, false),
            Life::Kill => self.go_down(gateway, true),
            Life::Start => self.come_up(gateway),
            Life::Restart => {
                let parts = [self.go_down(gateway, false), self.come_up(gateway)];
                let parts: Vec<&str> = parts
                    .iter()
                    .map(String::as_str)
                    .filter(|part| !part.is_empty())
                    .collect();
                parts.join("; ")
            }
            Life::Disconnect => {
                self.unsubscribe(gateway);
                self.fault_state().lives[gateway as usize].disconnected = true;
                String::new()
            }
            Life::Reconnect => {
                self.fault_state().lives[gateway as usize].disconnected = false;
                self.subscribe_gateway(gateway);
                String::new()
            }
            Life::Pause => {
                self.fault_state().lives[gateway as usize].paused = true;
                let state = &mut self.gateways[gateway as usize];
                state.generation += 1; // (the pending advance waits for the resume)
                state.flush_at = None;
                String::new()
            }
            Life::Resume => {
                let now = self.now;
                let life = &mut self.fault_state().lives[gateway as usize];
                life.paused = false;
                life.not_before = now;
                let held = std::mem::take(&mut life.held);
                let taken = held.len();
                for packet in held {
                    self.gateway_packet(gateway, packet);
                }
                self.arm(gateway);
                waiting_taken(taken)
            }
        }
    }

    /// Whether `node`'s QoS 1 retries wait (a paused gateway or broker: `Session.frozen`).
    pub(super) fn session_frozen(&mut self, node: u32) -> bool {
        match self.kinds[node as usize] {
            NodeRef::Gateway(gateway) => self.fault_state().lives[gateway as usize].paused,
            NodeRef::Broker => self.fault_state().broker.paused,
            _ => false,
        }
    }

    /// No output of the gateway goes out before this (`HostedGateway._not_before`).
    pub(super) fn not_before(&mut self, gateway: u32) -> Tick {
        self.fault_state().lives[gateway as usize].not_before
    }

    /// `HostedGateway._impaired_packet`: a packet that reached a paused, stopped or
    /// disconnected gateway, taken (kept for the resume, lost, or a PUBACK ignored: None)
    /// or handed back to arrive as usual.
    pub(super) fn gateway_takes(&mut self, gateway: u32, packet: Packet) -> Option<Packet> {
        let life = &mut self.fault_state().lives[gateway as usize];
        if life.paused {
            life.held.push(packet);
            return None;
        }
        let down = life.down;
        if !down && !life.disconnected {
            return Some(packet);
        }
        if packet.kind == Kind::Puback {
            // (a disconnected gateway's link to the cloud still works)
            return if down { None } else { Some(packet) };
        }
        if !down && packet.src != self.broker {
            return Some(packet);
        }
        self.lose_at_gateway(gateway, &packet);
        None
    }

    /// `HostedGateway._lose`: a PUBLISH it could not take, a `node_down` drop.
    fn lose_at_gateway(&mut self, gateway: u32, packet: &Packet) {
        self.fault_state().lives[gateway as usize].dropped_down += 1;
        let node = self.gateways[gateway as usize].node;
        let message = &packet.message;
        let cause = sketch::NODE_DOWN;
        self.ledger.drop(
            message.origin,
            message.seq,
            message.sources.as_deref().map(|v| v.as_slice()),
            cause,
        );
        self.node_counters[node as usize].drop(cause);
        self.topic_counter(message.topic).drop(cause);
        self.trace_drop(
            node,
            Some(packet.src),
            message.topic,
            message.origin,
            message.seq,
            "node_down",
        );
    }

    /// `HostedGateway._go_down`: a clean stop finishes what is due; either way what the
    /// gateway held is lost (`node_down`), it unsubscribes and abandons its QoS 1 messages.
    fn go_down(&mut self, gateway: u32, kill: bool) -> String {
        let now = self.now;
        let life = &mut self.fault_state().lives[gateway as usize];
        let waited = std::mem::take(&mut life.held);
        let was_paused = std::mem::replace(&mut life.paused, false);
        if !kill && !was_paused {
            self.advance(gateway, now);
        }
        let held = self.fault_state().stores[gateway as usize].waiting.len() as i64;
        self.fault_state().stores[gateway as usize].waiting.clear();
        let state = &mut self.gateways[gateway as usize];
        let unprocessed = state.logic_received - state.processed - state.logic_overflow;
        let lost =
            unprocessed.max(0) + state.pending_in_aggregate() + state.pending.len() as i64 + held;
        state.pending.clear();
        let node = state.node;
        if lost > 0 {
            self.fault_state().lives[gateway as usize].dropped_down += lost;
            self.node_counters[node as usize].dropped[sketch::NODE_DOWN as usize] += lost as u64;
        }
        self.abandon(node, sketch::NODE_DOWN);
        self.unsubscribe(gateway);
        let state = &mut self.gateways[gateway as usize];
        state.session.inflight.clear();
        state.generation += 1;
        state.flush_at = None;
        state.next_timer = None;
        // (it holds nothing now: what it describes is what it had done)
        state.queue.clear();
        state.current = None;
        state.groups.clear();
        state.group_of.clear();
        state.timers.clear();
        self.fault_state().lives[gateway as usize].down = true;
        let mut waiting = 0;
        for packet in waited {
            if packet.kind != Kind::Puback {
                self.lose_at_gateway(gateway, &packet);
                waiting += 1;
            }
        }
        let mut parts = Vec::new();
        if lost > 0 {
            parts.push(format!("lost {} held message(s)", lost));
        }
        if waiting > 0 {
            parts.push(format!("{} waiting message(s) lost", waiting));
        }
        parts.join(", ")
    }

    /// `HostedGateway._come_up`: a fresh logic, its clock at now; subscribed again.
    fn come_up(&mut self, gateway: u32) -> String {
        let now = self.now;
        let life = &mut self.fault_state().lives[gateway as usize];
        life.down = false;
        life.not_before = 0;
        let name = format!(
            "node:{}/processing",
            self.names[self.gateways[gateway as usize].node as usize]
        );
        let stream = Stream::new(&self.seed, &name);
        let state = &mut self.gateways[gateway as usize];
        state.delay_stream = stream;
        state.timer_sequence = 0;
        state.logic_now = now;
        state.logic_received = 0;
        state.processed = 0;
        state.logic_overflow = 0;
        state.rejected = 0;
        let window = state.spec.aggregate.as_ref().and_then(|a| a.window);
        if let Some(window) = window {
            state.set_timer(now + window, WINDOW);
        }
        state.next_timer = state.logic_next_timer();
        self.subscribe_gateway(gateway);
        self.arm(gateway);
        String::new()
    }

    /// `HostedGateway._subscribe`: when connected and up, each filter at the broker.
    fn subscribe_gateway(&mut self, gateway: u32) {
        let state = self.fault_state();
        let life = &state.lives[gateway as usize];
        if life.down || life.disconnected || state.broker.down {
            return;
        }
        let node = self.gateways[gateway as usize].node;
        let filters = self.gateways[gateway as usize].spec.subscriptions.clone();
        for (filter, qos) in &filters {
            self.subscribe(node, filter, *qos);
        }
        // `TopologyRun._filter_subscribed`: a gateway has subscribed once its last filter is
        let Some(watch) = self.fault_state().subscriptions.get_mut(&node) else {
            return;
        };
        watch.count += 1;
        let count = watch.count;
        let watchers = watch.faults.clone();
        self.counted(&watchers, count);
    }

    /// `HostedGateway._unsubscribe`: the broker forgets its subscriptions and what it had
    /// in flight to it.
    fn unsubscribe(&mut self, gateway: u32) {
        let state = self.fault_state();
        let life = &state.lives[gateway as usize];
        if life.down || life.disconnected || state.broker.down {
            return;
        }
        let node = self.gateways[gateway as usize].node;
        let filters = &self.gateways[gateway as usize].spec.subscriptions;
        self.subscriptions.retain(|(f, _, subscriber, q)| {
            *subscriber != node || !filters.iter().any(|(filter, qos)| filter == f && qos == q)
        });
        self.forget_matchings();
        self.broker_session
            .inflight
            .retain(|_, (dst, _)| *dst != node);
    }

    /// `DeliveryLedger.abandon`: what reached `node` and was not dropped already is, last,
    /// dropped by `cause`.
    fn abandon(&mut self, node: u32, cause: u8) {
        let Ledger {
            dropped,
            destinations,
            destination_of,
        } = &mut self.ledger;
        let position = destination_of[node as usize];
        if position == u32::MAX {
            return;
        }
        let destination = &destinations[position as usize];
        for (origin, record) in destination.origins.iter().zip(&destination.received) {
            let source = &mut dropped[*origin as usize];
            let mut pieces = crate::ledger::SeqSet {
                runs: record.seqs.runs.clone(),
            };
            for (other, seqs) in source.iter() {
                if *other != cause {
                    for &(first, last) in &seqs.runs {
                        pieces.remove(first, last);
                    }
                }
            }
            if pieces.runs.is_empty() {
                continue;
            }
            let index = match source.iter().position(|(other, _)| *other == cause) {
                Some(index) => index,
                None => {
                    source.push((cause, Default::default()));
                    source.len() - 1
                }
            };
            for &(first, last) in &pieces.runs {
                source[index].1.add(first, last);
            }
        }
    }
}

// --- the broker's life -----------------------------------------------------------------------
impl Engine {
    /// `TopologyRun.fault(action, broker)` (`BrokerModel.apply_fault`; the broker's start
    /// has every gateway not stopped subscribe again, in node order).
    fn broker_life(&mut self, action: Life) -> String {
        match action {
            Life::Stop | Life::Kill => self.broker_down(),
            Life::Start => self.broker_up(),
            Life::Pause => {
                self.fault_state().broker.paused = true;
                String::new()
            }
            Life::Resume => {
                let broker = &mut self.fault_state().broker;
                broker.paused = false;
                let routes = std::mem::take(&mut broker.held_routes);
                let packets = std::mem::take(&mut broker.held);
                let taken = routes.len() + packets.len();
                for message in routes {
                    self.route(message);
                }
                for packet in packets {
                    self.broker_packet(packet);
                }
                waiting_taken(taken)
            }
            _ => {
                let parts = [self.broker_down(), self.broker_up()];
                let parts: Vec<&str> = parts
                    .iter()
                    .map(String::as_str)
                    .filter(|part| !part.is_empty())
                    .collect();
                parts.join("; ")
            }
        }
    }

    /// `BrokerModel._go_down`: what waited to be routed dies, and with it its in-flight
    /// messages, subscriptions and (without persistence) retained messages.
    fn broker_down(&mut self) -> String {
        let queued = self.broker_queued;
        let broker = &mut self.fault_state().broker;
        let waiting = broker.held_routes.len() as i64 + queued - broker.stale;
        broker.stale = queued;
        broker.held_routes.clear();
        broker.paused = false;
        let waited = std::mem::take(&mut broker.held);
        let inflight = self.broker_session.inflight.len();
        self.broker_session.inflight.clear();
        let subscriptions = self.subscriptions.len();
        let mut topics: Vec<u32> = self.retained.keys().copied().collect();
        topics.sort_unstable();
        let broker = &mut self.fault_state().broker;
        let retained = if broker.persistent_restart {
            broker.persistent_restart = false;
            broker.kept = Some(topics);
            0
        } else {
            topics.len()
        };
        broker.down = true;
        if waiting > 0 {
            broker.dropped_down += waiting;
            let node = self.broker as usize;
            self.node_counters[node].dropped[sketch::NODE_DOWN as usize] += waiting as u64;
        }
        self.subscriptions.clear();
        self.forget_matchings();
        self.retained.clear();
        for packet in waited {
            if packet.kind != Kind::Puback {
                self.lose_at_broker(&packet);
            }
        }
        let parts: Vec<String> = [
            (waiting as usize, "message(s) waiting to be routed lost"),
            (inflight, "in-flight QoS 1 message(s) abandoned"),
            (subscriptions, "subscription(s) lost"),
            (retained, "retained message(s) lost"),
        ]
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{} {}", count, what))
        .collect();
        parts.join(", ")
    }

    fn broker_up(&mut self) -> String {
        let broker = &mut self.fault_state().broker;
        broker.down = false;
        let detail = match broker.kept.take() {
            Some(topics) => {
                let detail = format!("restored {} retained, 0 subscription(s)", topics.len());
                for topic in topics {
                    self.retained.insert(topic, ());
                }
                detail
            }
            None => String::new(),
        };
        for gateway in 0..self.gateways.len() as u32 {
            if !self.fault_state().lives[gateway as usize].down {
                self.subscribe_gateway(gateway);
            }
        }
        detail
    }

    /// `BrokerModel._route_queued`: a route scheduled before the broker went down dies; one
    /// falling due while it is paused waits for the resume; else it is routed (Some).
    pub(super) fn route_due(&mut self, message: Rc<Message>) -> Option<Rc<Message>> {
        let broker = &mut self.fault_state().broker;
        if broker.stale > 0 {
            broker.stale -= 1;
            return None;
        }
        if broker.paused {
            broker.held_routes.push(message);
            return None;
        }
        Some(message)
    }

    /// `BrokerModel._impaired_packet`: a packet that reached the broker while it was paused
    /// waits for the resume, one while it was down is lost (a PUBLISH: `node_down`); handed
    /// back when it is up.
    pub(super) fn broker_takes(&mut self, packet: Packet) -> Option<Packet> {
        let broker = &mut self.fault_state().broker;
        if broker.paused {
            broker.held.push(packet);
            return None;
        }
        if !broker.down {
            return Some(packet);
        }
        if packet.kind == Kind::Puback {
            return None;
        }
        self.lose_at_broker(&packet);
        None
    }

    /// A PUBLISH that reached the broker while it was down: a `node_down` drop.
    fn lose_at_broker(&mut self, packet: &Packet) {
        self.fault_state().broker.dropped_down += 1;
        let message = &packet.message;
        let cause = sketch::NODE_DOWN;
        self.ledger.drop(
            message.origin,
            message.seq,
            message.sources.as_deref().map(|v| v.as_slice()),
            cause,
        );
        self.node_counters[self.broker as usize].drop(cause);
        self.topic_counter(message.topic).drop(cause);
        self.trace_drop(
            self.broker,
            Some(packet.src),
            message.topic,
            message.origin,
            message.seq,
            "node_down",
        );
    }
}

/// `"{cost}; {more}"`, either part left out when empty.
fn joined(cost: String, more: String) -> String {
    match (cost.is_empty(), more.is_empty()) {
        (_, true) => cost,
        (true, false) => more,
        (false, false) => format!("{}; {}", cost, more),
    }
}

fn waiting_taken(taken: usize) -> String {
    if taken > 0 {
        format!("{} waiting packet(s) taken", taken)
    } else {
        String::new()
    }
}
