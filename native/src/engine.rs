//! The event loop and the built-in models, event for event as the pure engine runs them
//! (`core/engine.py`, `core/network.py`, `core/models/`, `lockstep/host.py` with
//! `gateway/logic.py` and `core/aggregation.py`): same queue order, same draws, same trace.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt::Write;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use crate::fmt::{format_g12, push_int};
use crate::ledger::Ledger;
use crate::rng::{py_round, Delay, Stream};
use crate::sketch::{self, Counter};

mod foreign;
pub use foreign::ForeignCall;
#[path = "faults.rs"]
pub mod faults;

pub type Tick = i64;

/// A multiply-shift hasher for the engine's integer keys (SipHash is for untrusted keys;
/// nothing here iterates a map, so its order never matters).
#[derive(Default, Clone, Copy)]
pub struct IntHasher(u64);

impl std::hash::Hasher for IntHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(5) ^ byte as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.0 = (self.0.rotate_left(5) ^ value as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type IntMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<IntHasher>>;
pub type Lineage = Rc<Vec<(u32, i64, i64)>>;

// --- messages and packets -------------------------------------------------------------------
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Mean,
    Min,
    Max,
    Count,
    Sum,
    Last,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::Mean => "mean",
            Function::Min => "min",
            Function::Max => "max",
            Function::Count => "count",
            Function::Sum => "sum",
            Function::Last => "last",
        }
    }
}

#[derive(Clone, Copy)]
pub enum AggValue {
    Float(f64),
    Int(i64),
}

pub struct AggPayload {
    pub values: Vec<(Function, AggValue)>,
    pub group: Option<String>,
}

#[derive(Clone)]
pub enum Payload {
    Float(f64),
    Aggregate(Rc<AggPayload>),
    /// a payload a Python node made (the Python object, held by the binding)
    Object(Rc<dyn std::any::Any>),
}

pub struct Message {
    pub topic: u32,
    pub payload: Payload,
    pub origin: u32,
    pub seq: i64,
    pub created_at: Tick,
    pub qos: u8,
    pub retain: bool,
    pub size_bytes: i64,
    pub sources: Option<Lineage>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Publish,
    Puback,
}

pub struct Packet {
    pub kind: Kind,
    pub src: u32,
    pub dst: u32,
    pub message: Rc<Message>,
    pub qos: u8,
    pub packet_id: u32,
    pub duplicate: bool,
    pub sent_at: Tick,
}

// --- the queue ------------------------------------------------------------------------------
pub enum Event {
    Publish(u32),
    Deliver(u32, Packet),
    Retry(u32, u32),
    Route(Rc<Message>),
    Flush(u32, u64),
    CutDown(u32),
    CutUp(u32),
    /// a Python node's timer (its callback is kept on the Python side, by this number)
    Foreign(u64),
    /// a fault of the schedule fires, or its duration is over (faults.rs)
    FaultBegin(u32),
    FaultEnd(u32),
    /// a sensor on a duty cycle wakes (what it kept goes out)
    Wake(u32),
}

/// The queue: a 4-ary min-heap of `(time, sequence << SLOT_BITS | slot)` keys (16 bytes, four
/// to a cache line), the events themselves in a slab. The order is `(time, sequence)`, as
/// the pure coordinator's; the slot only finds the event.
const SLOT_BITS: u32 = 28;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

struct EventQueue {
    heap: Vec<(Tick, u64)>,
    slab: Vec<Option<Event>>,
    free: Vec<u32>,
}

impl EventQueue {
    fn new() -> EventQueue {
        EventQueue {
            heap: Vec::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, time: Tick, sequence: u64, event: Event) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        assert!(
            (slot as u64) <= SLOT_MASK,
            "too many events pending at once"
        );
        let entry = (time, (sequence << SLOT_BITS) | slot as u64);
        let heap = &mut self.heap;
        let mut position = heap.len();
        heap.push(entry);
        while position > 0 {
            let parent = (position - 1) / 4;
            if heap[parent] <= entry {
                break;
            }
            heap[position] = heap[parent];
            position = parent;
        }
        heap[position] = entry;
    }

    #[inline]
    fn peek_time(&self) -> Option<Tick> {
        self.heap.first().map(|entry| entry.0)
    }

    /// The next event, if any (to fetch what it will touch while this one runs).
    #[inline]
    fn peek(&self) -> Option<&Event> {
        let top = self.heap.first()?;
        self.slab[(top.1 & SLOT_MASK) as usize].as_ref()
    }

    fn pop(&mut self) -> Option<(Tick, Event)> {
        let heap = &mut self.heap;
        let top = *heap.first()?;
        let last = heap.pop().unwrap();
        let count = heap.len();
        if count > 0 {
            let mut position = 0;
            loop {
                let first = position * 4 + 1;
                if first >= count {
                    break;
                }
                let mut best = first;
                let end = (first + 4).min(count);
                for child in first + 1..end {
                    if heap[child] < heap[best] {
                        best = child;
                    }
                }
                if heap[best] >= last {
                    break;
                }
                heap[position] = heap[best];
                position = best;
            }
            heap[position] = last;
        }
        let slot = (top.1 & SLOT_MASK) as u32;
        let event = self.slab[slot as usize].take().expect("a pending event");
        self.free.push(slot);
        Some((top.0, event))
    }
}

/// Ask the CPU to bring `value`'s first cache lines in (a hint: no effect on results).
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = value as *const T as *const i8;
        let size = std::mem::size_of::<T>().min(512);
        let mut offset = 0;
        while offset < size {
            // SAFETY: prefetching is a hint; the address is within `value`
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(offset)) };
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// `prefetch` of a string's characters.
#[inline]
fn prefetch_text(text: &str) {
    if let Some(first) = text.as_bytes().first() {
        prefetch(first);
    }
}

// --- the trace ------------------------------------------------------------------------------
pub struct Tracer {
    pub enabled: bool,
    buffer: String,
    hasher: Sha256,
    pub count: u64,
    /// the last line's time, spelled (consecutive lines often share it)
    time: Tick,
    time_text: String,
}

impl Tracer {
    fn new(enabled: bool) -> Tracer {
        Tracer {
            enabled,
            buffer: String::with_capacity(1 << 16),
            hasher: Sha256::new(),
            count: 0,
            time: -1,
            time_text: String::from("-1"),
        }
    }

    /// Start a line: `time\tkind\tnode\tpeer\ttopic\t`; the caller writes the message id, a
    /// tab, the detail, and calls `end`. (Inlined, so `kind` is copied as a constant.)
    #[inline(always)]
    fn begin(
        &mut self,
        time: Tick,
        kind: &str,
        node: &str,
        peer: &str,
        topic: &str,
    ) -> &mut String {
        let buffer = &mut self.buffer;
        // room for the whole line: the fields, the message id and a short detail
        buffer.reserve(kind.len() + node.len() + peer.len() + topic.len() + 96);
        if time != self.time {
            self.time = time;
            self.time_text.clear();
            push_int(&mut self.time_text, time);
        }
        buffer.push_str(&self.time_text);
        buffer.push('\t');
        buffer.push_str(kind);
        buffer.push('\t');
        buffer.push_str(node);
        buffer.push('\t');
        buffer.push_str(peer);
        buffer.push('\t');
        buffer.push_str(topic);
        buffer.push('\t');
        buffer
    }

    #[inline]
    fn end(&mut self) {
        self.buffer.push('\n');
        self.count += 1;
        if self.buffer.len() >= 1 << 16 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            self.hasher.update(self.buffer.as_bytes());
            self.buffer.clear();
        }
    }

    pub fn digest(&mut self) -> String {
        if !self.enabled {
            return String::new();
        }
        self.flush();
        let digest = self.hasher.clone().finalize();
        let mut out = String::with_capacity(64);
        for byte in digest.iter() {
            let _ = write!(out, "{:02x}", byte);
        }
        out
    }
}

#[inline]
fn message_id(out: &mut String, origin: &str, seq: i64) {
    out.push_str(origin);
    out.push('#');
    push_int(out, seq);
}

// --- network --------------------------------------------------------------------------------
#[derive(Clone, Copy, PartialEq)]
pub enum Jitter {
    None,
    Uniform,
    Normal,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Loss {
    None,
    Bernoulli,
    GilbertElliott,
}

#[derive(Clone)]
pub struct Profile {
    pub latency: i64,
    pub jitter: Jitter,
    pub jitter_ticks: i64,
    pub loss: Loss,
    pub loss_rate: f64,
    pub p_good_to_bad: f64,
    pub p_bad_to_good: f64,
    pub loss_good: f64,
    pub loss_bad: f64,
    pub bandwidth_bps: i64,
    pub reorder: bool,
}

pub struct Cut {
    pub side_a: Vec<bool>,
    pub side_b: Vec<bool>,
    pub down_since: Option<Tick>,
    pub last_healed_at: Tick,
    /// only the links from `side_a` to `side_b` are cut (a one-way partition)
    pub one_way: bool,
}

impl Cut {
    fn separates(&self, src: u32, dst: u32) -> bool {
        let (s, d) = (src as usize, dst as usize);
        (self.side_a[s] && self.side_b[d]) || (!self.one_way && self.side_b[s] && self.side_a[d])
    }
}

pub struct Link {
    pub src: u32,
    pub dst: u32,
    pub profile: Rc<Profile>,
    pub stream: Option<Stream>,
    pub busy_until: Tick,
    pub last_arrival: Tick,
    pub ge_bad: bool,
    pub cuts: Vec<u32>,
    pub counter: Counter,
    pub dst_relays: bool,
}

/// Resolves a link's profile from the rules that match it (the Python side applies them).
pub trait ProfileSource {
    fn profile(&mut self, rules: &[u32]) -> Profile;
}

// --- nodes ----------------------------------------------------------------------------------
#[derive(Clone, Copy)]
pub enum NodeRef {
    Broker,
    Cloud,
    Sensor(u32),
    Gateway(u32),
    /// a Python node (see `foreign.rs`): what reaches it goes to Python
    Foreign,
}

pub struct Session {
    next_id: u32,
    pub inflight: IntMap<u32, (u32, Rc<Message>)>,
}

impl Session {
    fn new() -> Session {
        Session {
            next_id: 0,
            inflight: IntMap::default(),
        }
    }
}

pub enum Value {
    Constant(f64, Rc<str>),
    Walk {
        state: f64,
        step: f64,
        low: Option<f64>,
        high: Option<f64>,
        stream: Box<Stream>,
    },
    Sine {
        mean: f64,
        amplitude: f64,
        omega: f64,
        phase: i64,
        noise: f64,
        stream: Option<Box<Stream>>,
    },
    Replay {
        values: Rc<Vec<f64>>,
        position: usize,
        looped: bool,
    },
}

impl Value {
    fn next(&mut self, now: Tick) -> f64 {
        match self {
            Value::Constant(value, _) => *value,
            Value::Walk {
                state,
                step,
                low,
                high,
                stream,
            } => {
                let mut value = if *step != 0.0 {
                    *state + stream.normal(0.0, *step)
                } else {
                    *state
                };
                if let Some(low) = low {
                    if value < *low {
                        value = *low;
                    }
                }
                if let Some(high) = high {
                    if value > *high {
                        value = *high;
                    }
                }
                *state = value;
                value
            }
            Value::Sine {
                mean,
                amplitude,
                omega,
                phase,
                noise,
                stream,
            } => {
                let seconds = (now + *phase) as f64 / 1_000_000.0;
                let value = *mean + *amplitude * (*omega * seconds).sin();
                match stream {
                    Some(stream) => value + stream.normal(0.0, *noise),
                    None => value,
                }
            }
            Value::Replay {
                values,
                position,
                looped,
            } => {
                let mut index = *position;
                *position = index + 1;
                if index >= values.len() {
                    index = if *looped {
                        index % values.len()
                    } else {
                        values.len() - 1
                    };
                }
                values[index]
            }
        }
    }
}

#[derive(Clone, Copy)]
pub struct SensorSpec {
    pub qos: u8,
    pub retain: bool,
    pub payload_bytes: i64,
    pub periodic: bool,
    pub period: i64,
    pub jitter: i64,
    pub offset: Option<i64>,
    pub start: i64,
    pub stop: Option<i64>,
    pub rate: f64,
}

/// A sensor; what every publication reads comes first (one cache line with a constant
/// value), its settings are shared (`Engine::sensor_specs`).
#[repr(C)]
pub struct Sensor {
    pub node: u32,
    pub topic: u32,
    /// position in `Engine::sensor_specs`
    pub spec: u32,
    pub uplink: u32,
    pub published: i64,
    pub first: i64,
    pub cycle: i64,
    pub value: Value,
    pub mean_gap: f64,
    pub stream: Stream,
    pub session: Session,
}

pub struct AggregateSpec {
    pub count: Option<i64>,
    pub window: Option<i64>,
    pub functions: Vec<Function>,
    /// 0 none, 1 topic, 2 device
    pub group_by: u8,
}

struct Group {
    count: i64,
    total: f64,
    minimum: f64,
    maximum: f64,
    last: f64,
    sources: Vec<(u32, Vec<(i64, i64)>)>,
    source_index: IntMap<u32, usize>,
    /// emptied run lists of emitted aggregates, reused (a reading costs no allocation)
    spare_runs: Vec<Vec<(i64, i64)>>,
}

impl Group {
    fn new() -> Group {
        Group {
            count: 0,
            total: 0.0,
            minimum: f64::INFINITY,
            maximum: f64::NEG_INFINITY,
            last: 0.0,
            sources: Vec::new(),
            source_index: IntMap::default(),
            spare_runs: Vec::new(),
        }
    }
}

pub struct GatewaySpec {
    pub subscriptions: Vec<(String, u8)>,
    pub forward_to: u32,
    pub forward_topic: u32,
    pub forward_qos: u8,
    pub forward_bytes: i64,
    pub capacity: usize,
    pub drop_newest: bool,
    pub delay: Delay,
    pub aggregate: Option<AggregateSpec>,
}

const PROCESSED: u8 = 0;
const WINDOW: u8 = 1;

struct Inbound {
    at: Tick,
    message: Rc<Message>,
}

enum Output {
    Publish {
        t: Tick,
        payload: Payload,
        created_at: Option<Tick>,
        detail: String,
        sources: Lineage,
    },
    Drop {
        t: Tick,
        topic: u32,
        origin: u32,
        seq: i64,
        reason: &'static str,
        /// the dropped message's lineage (another gateway's forward: its readings)
        sources: Option<Lineage>,
    },
}

/// `GatewayLogic` in its `NodeRuntime`, and the `HostedGateway` around it.
pub struct Gateway {
    pub node: u32,
    pub spec: GatewaySpec,
    pub delay_stream: Stream,
    // hosted side
    pub received: i64,
    pub forwarded: i64,
    sent_seq: i64,
    pub dropped_overflow: i64,
    pub dropped_rejected: i64,
    pending: Vec<Inbound>,
    next_timer: Option<Tick>,
    flush_at: Option<Tick>,
    generation: u64,
    pub session: Session,
    // the logic
    timers: BinaryHeap<std::cmp::Reverse<(Tick, u64, u8)>>,
    timer_sequence: u64,
    logic_now: Tick,
    queue: VecDeque<Rc<Message>>,
    current: Option<Rc<Message>>,
    pub logic_received: i64,
    pub processed: i64,
    pub logic_overflow: i64,
    pub rejected: i64,
    /// the aggregation groups by key, in order of creation; `group_of` finds them by topic
    /// or origin (0 when they are not grouped)
    groups: Vec<(String, Group)>,
    group_of: IntMap<u32, usize>,
    outputs: Vec<Output>,
    spare_outputs: Vec<Output>,
    spare_inbound: Vec<Inbound>,
}

impl Gateway {
    pub fn pending_in_aggregate(&self) -> i64 {
        self.groups.iter().map(|(_, group)| group.count).sum()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn set_timer(&mut self, at: Tick, name: u8) {
        self.timer_sequence += 1;
        self.timers
            .push(std::cmp::Reverse((at, self.timer_sequence, name)));
    }

    fn logic_next_timer(&self) -> Option<Tick> {
        self.timers.peek().map(|entry| entry.0 .0)
    }
}

// --- the engine -----------------------------------------------------------------------------
pub struct Engine {
    pub now: Tick,
    pub events: u64,
    sequence: u64,
    queue: EventQueue,
    pub names: Vec<String>,
    pub kinds: Vec<NodeRef>,
    pub broker: u32,
    pub cloud: u32,
    pub topics: Vec<String>,
    topic_index: HashMap<String, u32>,
    pub topic_counters: Vec<Option<Counter>>,
    pub topic_order: Vec<u32>,
    pub node_counters: Vec<Counter>,
    pub links: Vec<Link>,
    link_index: IntMap<(u32, u32), u32>,
    pub cuts: Vec<Cut>,
    direct: bool,
    rule_from: Vec<u64>,
    rule_to: Vec<u64>,
    rule_bidirectional: Vec<bool>,
    profiles: HashMap<Vec<u32>, Rc<Profile>>,
    seed: String,
    pub tracer: Tracer,
    pub ledger: Ledger,
    pub sensors: Vec<Sensor>,
    /// the sensors' settings, each distinct one once
    pub sensor_specs: Vec<SensorSpec>,
    pub gateways: Vec<Gateway>,
    // broker
    broker_delay: Delay,
    broker_stream: Stream,
    broker_busy_until: Tick,
    pub broker_queued: i64,
    pub broker_routed: i64,
    pub broker_session: Session,
    pub retained: IntMap<u32, ()>,
    subscriptions: Vec<(String, Vec<String>, u32, u8)>,
    /// per topic, its subscribers' position in `matchings` (u32::MAX: not looked up yet)
    matching_of: Vec<u32>,
    /// the distinct lists of (subscriber, qos) topics match (few: a fleet's topics share them)
    matchings: Vec<Rc<Vec<(u32, u8)>>>,
    // cloud
    pub cloud_received: i64,
    pub cloud_session: Session,
    pub record_limit: usize,
    pub arrivals: Vec<(Tick, Rc<Message>)>,
    retry_interval: i64,
    inv_log_gamma: f64,
    pub profile_source: Option<Box<dyn ProfileSource>>,
    /// what a Python node must do next (`run` returns for it; see `foreign.rs`)
    pub foreign_call: Option<ForeignCall>,
    /// a Python node watches the partitions (`NetworkModel.watch_cuts`)
    pub watching_cuts: bool,
    /// a gateway model was to aggregate a payload a Python node made (which only the pure
    /// gateway reads: an int, text, an object with a value field)
    pub object_aggregated: bool,
    /// the fault schedule's state (None: a run without one; see faults.rs)
    pub faults: Option<Box<faults::Faults>>,
}

pub struct Setup {
    pub seed: String,
    pub names: Vec<String>,
    pub broker: u32,
    pub cloud: u32,
    pub trace: bool,
    pub record_limit: usize,
    pub retry_interval: i64,
    pub broker_delay: Delay,
    pub direct: bool,
    pub rule_from: Vec<u64>,
    pub rule_to: Vec<u64>,
    pub rule_bidirectional: Vec<bool>,
    pub cuts: Vec<(Vec<u32>, Vec<u32>, Tick, Option<Tick>)>,
}

impl Engine {
    pub fn new(setup: Setup) -> Engine {
        let count = setup.names.len();
        let mut kinds = vec![NodeRef::Broker; count];
        kinds[setup.cloud as usize] = NodeRef::Cloud;
        let broker_stream = Stream::new(
            &setup.seed,
            &format!("node:{}/processing", setup.names[setup.broker as usize]),
        );
        let mut engine = Engine {
            now: 0,
            events: 0,
            sequence: 0,
            queue: EventQueue::new(),
            kinds,
            broker: setup.broker,
            cloud: setup.cloud,
            topics: Vec::new(),
            topic_index: HashMap::new(),
            topic_counters: Vec::new(),
            topic_order: Vec::new(),
            node_counters: (0..count).map(|_| Counter::new()).collect(),
            links: Vec::new(),
            link_index: IntMap::default(),
            cuts: Vec::new(),
            direct: setup.direct,
            rule_from: setup.rule_from,
            rule_to: setup.rule_to,
            rule_bidirectional: setup.rule_bidirectional,
            profiles: HashMap::new(),
            seed: setup.seed,
            tracer: Tracer::new(setup.trace),
            ledger: Ledger::new(count),
            sensors: Vec::new(),
            sensor_specs: Vec::new(),
            gateways: Vec::new(),
            broker_delay: setup.broker_delay,
            broker_stream,
            broker_busy_until: 0,
            broker_queued: 0,
            broker_routed: 0,
            broker_session: Session::new(),
            retained: IntMap::default(),
            subscriptions: Vec::new(),
            matching_of: Vec::new(),
            matchings: Vec::new(),
            cloud_received: 0,
            cloud_session: Session::new(),
            record_limit: setup.record_limit,
            arrivals: Vec::new(),
            retry_interval: setup.retry_interval,
            inv_log_gamma: sketch::log_gamma_factor(),
            profile_source: None,
            foreign_call: None,
            watching_cuts: false,
            object_aggregated: false,
            faults: None,
            names: setup.names,
        };
        // Topology._network: the scenario's partitions are the first events on the queue
        for (side_a, side_b, start, end) in setup.cuts {
            let mut a = vec![false; count];
            let mut b = vec![false; count];
            for node in side_a {
                a[node as usize] = true;
            }
            for node in side_b {
                b[node as usize] = true;
            }
            let index = engine.cuts.len() as u32;
            engine.cuts.push(Cut {
                side_a: a,
                side_b: b,
                down_since: None,
                last_healed_at: -1,
                one_way: false,
            });
            engine.schedule(start, Event::CutDown(index));
            if let Some(end) = end {
                engine.schedule(end, Event::CutUp(index));
            }
        }
        engine
    }

    #[inline]
    fn schedule(&mut self, time: Tick, event: Event) {
        self.sequence += 1;
        self.queue.push(time, self.sequence, event);
    }

    pub fn intern_topic(&mut self, topic: &str) -> u32 {
        if let Some(&index) = self.topic_index.get(topic) {
            return index;
        }
        let index = self.topics.len() as u32;
        self.topics.push(topic.to_string());
        self.topic_index.insert(topic.to_string(), index);
        self.topic_counters.push(None);
        self.matching_of.push(u32::MAX);
        index
    }

    /// `metrics.topic(topic)`: the topic's counter, made on first use.
    #[inline]
    fn topic_counter(&mut self, topic: u32) -> &mut Counter {
        let slot = &mut self.topic_counters[topic as usize];
        if slot.is_none() {
            *slot = Some(Counter::new());
            self.topic_order.push(topic);
        }
        slot.as_mut().unwrap()
    }

    // --- binding (Topology: broker, cloud, devices, gateways) --------------------------------
    pub fn bind_cloud(&mut self) {
        let count = self.names.len();
        self.ledger.add_destination(self.cloud, count, false);
    }

    /// Bind a sensor whose settings are `sensor_specs[spec_index]`.
    pub fn add_sensor(&mut self, node: u32, topic: &str, spec_index: u32, value: Value) {
        let spec = self.sensor_specs[spec_index as usize];
        let topic = self.intern_topic(topic);
        self.topic_counter(topic);
        let index = self.sensors.len() as u32;
        self.kinds[node as usize] = NodeRef::Sensor(index);
        let mut stream = Stream::new(&self.seed, &format!("node:{}", self.names[node as usize]));
        let mut sensor = Sensor {
            node,
            topic,
            spec: spec_index,
            value,
            stream: Stream::new("", ""),
            published: 0,
            first: 0,
            cycle: 0,
            mean_gap: 0.0,
            session: Session::new(),
            uplink: u32::MAX,
        };
        let first;
        if spec.periodic {
            let offset = match spec.offset {
                None => stream.below(spec.period),
                Some(offset) => offset,
            };
            sensor.first = spec.start + offset;
            let mut nominal = sensor.first;
            if spec.jitter != 0 {
                nominal += py_round(spec.jitter as f64 * (2.0 * stream.random() - 1.0));
            }
            first = nominal.max(spec.start);
        } else {
            sensor.mean_gap = 1_000_000.0 / spec.rate;
            first = spec.start + py_round(stream.exponential(sensor.mean_gap));
        }
        sensor.stream = stream;
        self.sensors.push(sensor);
        if spec.stop.map_or(true, |stop| first < stop) {
            self.schedule(first, Event::Publish(index));
        }
    }

    /// `BrokerModel.subscribe` (at bind: nothing is retained yet)
    pub fn subscribe(&mut self, node: u32, filter: &str, qos: u8) {
        let known = self
            .subscriptions
            .iter()
            .any(|(f, _, subscriber, q)| f == filter && *subscriber == node && *q == qos);
        if !known {
            let levels: Vec<String> = filter.split('/').map(str::to_string).collect();
            self.subscriptions
                .push((filter.to_string(), levels, node, qos));
            self.forget_matchings();
        }
    }

    /// Every topic's subscribers looked up again (the subscriptions changed).
    pub fn forget_matchings(&mut self) {
        self.matching_of.fill(u32::MAX);
        self.matchings.clear();
    }

    pub fn seed_text(&self) -> String {
        self.seed.clone()
    }

    pub fn add_gateway(&mut self, node: u32, spec: GatewaySpec) {
        let index = self.gateways.len() as u32;
        self.kinds[node as usize] = NodeRef::Gateway(index);
        let count = self.names.len();
        self.ledger.add_destination(node, count, true);
        for (filter, qos) in &spec.subscriptions {
            self.subscribe(node, filter, *qos);
        }
        let delay_stream = Stream::new(
            &self.seed,
            &format!("node:{}/processing", self.names[node as usize]),
        );
        let window = spec
            .aggregate
            .as_ref()
            .and_then(|aggregate| aggregate.window);
        let mut gateway = Gateway {
            node,
            spec,
            delay_stream,
            received: 0,
            forwarded: 0,
            sent_seq: 0,
            dropped_overflow: 0,
            dropped_rejected: 0,
            pending: Vec::new(),
            next_timer: None,
            flush_at: None,
            generation: 0,
            session: Session::new(),
            timers: BinaryHeap::new(),
            timer_sequence: 0,
            logic_now: 0,
            queue: VecDeque::new(),
            current: None,
            logic_received: 0,
            processed: 0,
            logic_overflow: 0,
            rejected: 0,
            groups: Vec::new(),
            group_of: IntMap::default(),
            outputs: Vec::new(),
            spare_outputs: Vec::new(),
            spare_inbound: Vec::new(),
        };
        if let Some(window) = window {
            gateway.set_timer(window, WINDOW);
        }
        gateway.next_timer = gateway.logic_next_timer();
        self.gateways.push(gateway);
        self.arm(index);
    }

    // --- running ------------------------------------------------------------------------------
    /// `Coordinator.run(until, inclusive=False)`: every event before `until`; the clock then
    /// reads `until`.
    pub fn run(&mut self, until: Tick) {
        let limit = until - 1;
        while let Some(time) = self.queue.peek_time() {
            if time > limit {
                break;
            }
            let (time, event) = self.queue.pop().unwrap();
            self.now = time;
            self.events += 1;
            self.prefetch_next();
            self.dispatch(event);
            if self.foreign_call.is_some() {
                return; // the caller hands it to Python, then runs on
            }
        }
        self.now = until;
    }

    /// Start loading what the next event will touch (a sensor, a link, a message), so that
    /// with a big fleet it is in the cache when that event runs, not fetched then.
    #[inline]
    fn prefetch_next(&self) {
        match self.queue.peek() {
            Some(Event::Publish(sensor)) => {
                if let Some(sensor) = self.sensors.get(*sensor as usize) {
                    prefetch(sensor);
                }
            }
            Some(Event::Deliver(link, packet)) => {
                if let Some(link) = self.links.get(*link as usize) {
                    prefetch(link);
                }
                prefetch(&*packet.message);
                if let Some(name) = self.names.get(packet.src as usize) {
                    prefetch(name);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Publish(sensor) => self.sensor_publish(sensor),
            Event::Deliver(link, packet) => self.deliver(link, packet),
            Event::Retry(node, packet_id) => self.retry(node, packet_id),
            Event::Route(message) => {
                self.broker_queued -= 1;
                if self.faults.is_none() {
                    self.route(message);
                } else if let Some(message) = self.route_due(message) {
                    self.route(message);
                }
            }
            Event::Flush(gateway, generation) => self.flush(gateway, generation),
            Event::CutDown(cut) => {
                let now = self.now;
                let cut = &mut self.cuts[cut as usize];
                if cut.down_since.is_none() {
                    cut.down_since = Some(now);
                    self.cuts_changed();
                }
            }
            Event::Foreign(call) => self.foreign_call = Some(ForeignCall::Timer(call)),
            Event::CutUp(cut) => {
                let now = self.now;
                let cut = &mut self.cuts[cut as usize];
                if cut.down_since.is_some() {
                    cut.down_since = None;
                    cut.last_healed_at = now;
                    self.cuts_changed();
                }
            }
            Event::FaultBegin(fault) => self.fault_begin(fault),
            Event::FaultEnd(fault) => self.fault_end(fault),
            Event::Wake(sensor) => self.wake(sensor),
        }
    }

    // --- sensors ------------------------------------------------------------------------------
    fn sensor_publish(&mut self, index: u32) {
        if self.faults.is_some() && self.sensor_faulted(index) {
            self.sensor_publish_faulted(index);
            return;
        }
        let now = self.now;
        let value = self.sensors[index as usize].value.next(now);
        self.sensor_emit(index, now, value, now);
        self.schedule_next_publish(index, now);
    }

    /// One reading goes out (`SensorModel._emit`): numbered, counted, traced, sent.
    #[inline]
    fn sensor_emit(&mut self, index: u32, now: Tick, value: f64, created_at: Tick) {
        let sensor = &self.sensors[index as usize];
        if let Some(link) = self.links.get(sensor.uplink as usize) {
            prefetch(link);
        }
        prefetch(&self.node_counters[sensor.node as usize]);
        if let Some(Some(counter)) = self.topic_counters.get(sensor.topic as usize) {
            prefetch(counter);
        }
        prefetch_text(&self.names[sensor.node as usize]);
        prefetch_text(&self.topics[sensor.topic as usize]);
        let sensor = &mut self.sensors[index as usize];
        let spec = self.sensor_specs[sensor.spec as usize];
        sensor.published += 1;
        let seq = sensor.published;
        let node = sensor.node;
        let topic = sensor.topic;
        let message = Rc::new(Message {
            topic,
            payload: Payload::Float(value),
            origin: node,
            seq,
            created_at,
            qos: spec.qos,
            retain: spec.retain,
            size_bytes: spec.payload_bytes,
            sources: None,
        });
        {
            let counter = self.topic_counters[topic as usize].as_mut().unwrap();
            counter.sent += 1;
            counter.bytes += spec.payload_bytes as u64;
        }
        if self.tracer.enabled {
            let line = self.tracer.begin(
                now,
                "publish",
                &self.names[node as usize],
                &self.names[self.broker as usize],
                &self.topics[topic as usize],
            );
            message_id(line, &self.names[node as usize], seq);
            line.push('\t');
            match &self.sensors[index as usize].value {
                Value::Constant(_, spelling) => line.push_str(spelling),
                _ => format_g12(line, value),
            }
            self.tracer.end();
        }
        let broker = self.broker;
        self.publish(node, broker, message, spec.qos);
    }

    /// The sensor's next reading on the queue (or none past its stop).
    #[inline]
    fn schedule_next_publish(&mut self, index: u32, now: Tick) {
        let sensor = &mut self.sensors[index as usize];
        let spec = self.sensor_specs[sensor.spec as usize];
        let following = if spec.periodic {
            sensor.cycle += 1;
            let mut following = sensor.first + sensor.cycle * spec.period;
            if spec.jitter != 0 {
                following += py_round(spec.jitter as f64 * (2.0 * sensor.stream.random() - 1.0));
            }
            if following < spec.start {
                following = spec.start;
            }
            if following <= now {
                following = now + 1;
            }
            following
        } else {
            now + py_round(sensor.stream.exponential(sensor.mean_gap)).max(1)
        };
        if spec.stop.map_or(true, |stop| following < stop) {
            self.schedule(following, Event::Publish(index));
        }
    }

    // --- sessions -----------------------------------------------------------------------------
    fn session_of(&mut self, node: u32) -> &mut Session {
        match self.kinds[node as usize] {
            NodeRef::Broker => &mut self.broker_session,
            NodeRef::Cloud => &mut self.cloud_session,
            NodeRef::Sensor(index) => &mut self.sensors[index as usize].session,
            NodeRef::Gateway(index) => &mut self.gateways[index as usize].session,
            NodeRef::Foreign => unreachable!("a Python node keeps its MQTT session in Python"),
        }
    }

    /// A PUBLISH from `node` to `dst`: at QoS 0 straight onto the network, at QoS 1 through
    /// the node's session (`Session.publish`).
    pub(crate) fn publish(&mut self, node: u32, dst: u32, message: Rc<Message>, qos: u8) {
        if qos == 0 {
            self.transmit(Packet {
                kind: Kind::Publish,
                src: node,
                dst,
                message,
                qos: 0,
                packet_id: 0,
                duplicate: false,
                sent_at: 0,
            });
        } else {
            self.session_publish(node, dst, message, false);
        }
    }

    /// `Session.publish(dst, message, qos>=1)`: in flight until acknowledged, retried.
    fn session_publish(
        &mut self,
        node: u32,
        dst: u32,
        message: Rc<Message>,
        duplicate: bool,
    ) -> u32 {
        let session = self.session_of(node);
        session.next_id += 1;
        let packet_id = session.next_id;
        session.inflight.insert(packet_id, (dst, message.clone()));
        self.transmit(Packet {
            kind: Kind::Publish,
            src: node,
            dst,
            message,
            qos: 1,
            packet_id,
            duplicate,
            sent_at: 0,
        });
        let at = self.now + self.retry_of(node);
        self.schedule(at, Event::Retry(node, packet_id));
        packet_id
    }

    fn retry_of(&self, node: u32) -> i64 {
        match self.kinds[node as usize] {
            NodeRef::Cloud => 1,
            _ => self.retry_interval,
        }
    }

    fn retry(&mut self, node: u32, packet_id: u32) {
        let entry = self
            .session_of(node)
            .inflight
            .get(&packet_id)
            .map(|(dst, m)| (*dst, m.clone()));
        let Some((dst, message)) = entry else { return };
        if self.faults.is_some() && self.session_frozen(node) {
            let at = self.now + self.retry_of(node);
            self.schedule(at, Event::Retry(node, packet_id));
            return;
        }
        self.transmit(Packet {
            kind: Kind::Publish,
            src: node,
            dst,
            message,
            qos: 1,
            packet_id,
            duplicate: true,
            sent_at: 0,
        });
        let at = self.now + self.retry_of(node);
        self.schedule(at, Event::Retry(node, packet_id));
    }

    fn reply_puback(&mut self, node: u32, packet: &Packet) {
        self.transmit(Packet {
            kind: Kind::Puback,
            src: node,
            dst: packet.src,
            message: packet.message.clone(),
            qos: 0,
            packet_id: packet.packet_id,
            duplicate: false,
            sent_at: 0,
        });
    }

    // --- the network --------------------------------------------------------------------------
    fn open_link(&mut self, src: u32, dst: u32, profiles: &mut dyn ProfileSource) -> u32 {
        let profile = if self.direct {
            Rc::new(Profile {
                latency: 0,
                jitter: Jitter::None,
                jitter_ticks: 0,
                loss: Loss::None,
                loss_rate: 0.0,
                p_good_to_bad: 0.0,
                p_bad_to_good: 0.0,
                loss_good: 0.0,
                loss_bad: 1.0,
                bandwidth_bps: 0,
                reorder: false,
            })
        } else {
            let (sf, st) = (self.rule_from[src as usize], self.rule_to[src as usize]);
            let (df, dt) = (self.rule_from[dst as usize], self.rule_to[dst as usize]);
            let mut matching = Vec::new();
            for rule in 0..self.rule_bidirectional.len() {
                let bit = 1u64 << rule;
                if (sf & bit != 0 && dt & bit != 0)
                    || (self.rule_bidirectional[rule] && st & bit != 0 && df & bit != 0)
                {
                    matching.push(rule as u32);
                }
            }
            match self.profiles.get(&matching) {
                Some(profile) => profile.clone(),
                None => {
                    let profile = Rc::new(profiles.profile(&matching));
                    self.profiles.insert(matching, profile.clone());
                    profile
                }
            }
        };
        let cuts = (0..self.cuts.len() as u32)
            .filter(|&c| self.cuts[c as usize].separates(src, dst))
            .collect();
        let index = self.links.len() as u32;
        self.links.push(Link {
            src,
            dst,
            profile,
            stream: None,
            busy_until: 0,
            last_arrival: 0,
            ge_bad: false,
            cuts,
            counter: Counter::new(),
            dst_relays: dst == self.broker,
        });
        self.link_index.insert((src, dst), index);
        index
    }

    fn link_stream<'a>(seed: &str, names: &[String], link: &'a mut Link) -> &'a mut Stream {
        if link.stream.is_none() {
            let name = format!(
                "link:{}->{}",
                names[link.src as usize], names[link.dst as usize]
            );
            link.stream = Some(Stream::new(seed, &name));
        }
        link.stream.as_mut().unwrap()
    }

    fn link_for(&mut self, src: u32, dst: u32) -> u32 {
        if let NodeRef::Sensor(index) = self.kinds[src as usize] {
            let uplink = self.sensors[index as usize].uplink;
            if uplink != u32::MAX && self.links[uplink as usize].dst == dst {
                return uplink;
            }
        }
        match self.link_index.get(&(src, dst)) {
            Some(&index) => index,
            None => {
                let mut profiles = self
                    .profile_source
                    .take()
                    .expect("a profile source while running");
                let index = self.open_link(src, dst, profiles.as_mut());
                self.profile_source = Some(profiles);
                if let NodeRef::Sensor(sensor) = self.kinds[src as usize] {
                    if dst == self.broker {
                        self.sensors[sensor as usize].uplink = index;
                    }
                }
                index
            }
        }
    }

    fn transmit(&mut self, mut packet: Packet) {
        let link_index = self.link_for(packet.src, packet.dst);
        let now = self.now;
        packet.sent_at = now;
        let link = &mut self.links[link_index as usize];
        link.counter.sent += 1;
        let size = if packet.kind == Kind::Publish {
            packet.message.size_bytes + self.topics[packet.message.topic as usize].len() as i64 + 4
        } else {
            4
        };
        link.counter.bytes += size as u64;
        if packet.duplicate {
            link.counter.redelivered += 1;
        }
        self.node_counters[packet.src as usize].sent += 1;
        let link = &self.links[link_index as usize];
        if !link.cuts.is_empty()
            && link
                .cuts
                .iter()
                .any(|&c| self.cuts[c as usize].down_since.is_some())
        {
            self.drop_packet(link_index, &packet, sketch::PARTITION, now);
            return;
        }
        if self.direct {
            self.schedule(now, Event::Deliver(link_index, packet));
            return;
        }
        let link = &mut self.links[link_index as usize];
        let profile = link.profile.clone();
        let mut departure = now;
        if profile.bandwidth_bps != 0 {
            let start = if link.busy_until > now {
                link.busy_until
            } else {
                now
            };
            departure = start + (size * 8 * 1_000_000).div_euclid(profile.bandwidth_bps);
            link.busy_until = departure;
        }
        if profile.loss != Loss::None {
            let seed = &self.seed;
            let names = &self.names;
            let lost = {
                let ge_bad = link.ge_bad;
                let stream = Self::link_stream(seed, names, link);
                if profile.loss == Loss::Bernoulli {
                    stream.random() < profile.loss_rate
                } else {
                    let mut bad = ge_bad;
                    if bad {
                        if stream.random() < profile.p_bad_to_good {
                            bad = false;
                        }
                    } else if stream.random() < profile.p_good_to_bad {
                        bad = true;
                    }
                    let probability = if bad {
                        profile.loss_bad
                    } else {
                        profile.loss_good
                    };
                    let lost =
                        probability >= 1.0 || (probability > 0.0 && stream.random() < probability);
                    link.ge_bad = bad;
                    lost
                }
            };
            if lost {
                self.drop_packet(link_index, &packet, sketch::LOSS, now);
                return;
            }
        }
        let link = &mut self.links[link_index as usize];
        let mut delay = profile.latency;
        if profile.jitter != Jitter::None {
            let stream = Self::link_stream(&self.seed, &self.names, link);
            let value = if profile.jitter == Jitter::Normal {
                stream.normal(delay as f64, profile.jitter_ticks as f64)
            } else {
                delay as f64 + profile.jitter_ticks as f64 * (2.0 * stream.random() - 1.0)
            };
            delay = if value >= 0.0 {
                py_round(value)
            } else {
                Self::jittered(stream, &profile, 1)
            };
        }
        let mut arrival = departure + delay;
        if !profile.reorder {
            if arrival < link.last_arrival {
                arrival = link.last_arrival;
            }
            link.last_arrival = arrival;
        }
        self.schedule(arrival, Event::Deliver(link_index, packet));
    }

    fn jittered(stream: &mut Stream, profile: &Profile, drawn: usize) -> i64 {
        let base = profile.latency as f64;
        let spread = profile.jitter_ticks as f64;
        for _ in 0..(64 - drawn) {
            let value = if profile.jitter == Jitter::Uniform {
                base + spread * (2.0 * stream.random() - 1.0)
            } else {
                stream.normal(base, spread)
            };
            if value >= 0.0 {
                return py_round(value);
            }
        }
        0
    }

    fn drop_packet(&mut self, link_index: u32, packet: &Packet, cause: u8, now: Tick) {
        let link = &mut self.links[link_index as usize];
        link.counter.drop(cause);
        let (src, dst) = (link.src, link.dst);
        self.node_counters[src as usize].drop(cause);
        let message = &packet.message;
        if packet.kind == Kind::Publish {
            self.topic_counter(message.topic).drop(cause);
            self.ledger.drop(
                message.origin,
                message.seq,
                message.sources.as_deref().map(|v| v.as_slice()),
                cause,
            );
        }
        if self.tracer.enabled {
            let line = self.tracer.begin(
                now,
                "drop",
                &self.names[src as usize],
                &self.names[dst as usize],
                &self.topics[message.topic as usize],
            );
            message_id(line, &self.names[message.origin as usize], message.seq);
            line.push('\t');
            line.push_str(if packet.kind == Kind::Publish {
                "publish:"
            } else {
                "puback:"
            });
            line.push_str(sketch::CAUSES[cause as usize]);
            self.tracer.end();
        }
        if self.faults.is_some() {
            self.dropped_on(src, dst);
        }
    }

    fn deliver(&mut self, link_index: u32, packet: Packet) {
        let now = self.now;
        if packet.kind == Kind::Publish {
            let message = &*packet.message;
            if let Some(Some(counter)) = self.topic_counters.get(message.topic as usize) {
                prefetch(counter);
            }
            self.ledger.prefetch(packet.dst, message.origin);
            if let Some(name) = self.names.get(packet.src as usize) {
                prefetch_text(name);
            }
            if let Some(topic) = self.topics.get(message.topic as usize) {
                prefetch_text(topic);
            }
        }
        let link = &self.links[link_index as usize];
        if !link.cuts.is_empty() {
            for &cut in &link.cuts {
                let cut = &self.cuts[cut as usize];
                if cut.down_since.is_some() || cut.last_healed_at > packet.sent_at {
                    self.drop_packet(link_index, &packet, sketch::PARTITION, now);
                    return;
                }
            }
        }
        let inv = self.inv_log_gamma;
        let link = &mut self.links[link_index as usize];
        link.counter.delivered += 1;
        link.counter.latency.add(now - packet.sent_at, inv);
        let (src, dst, relays) = (link.src, link.dst, link.dst_relays);
        let (topic, origin, seq, created_at) = {
            let message = &packet.message;
            (
                message.topic,
                message.origin,
                message.seq,
                message.created_at,
            )
        };
        if packet.kind == Kind::Publish {
            let counter = &mut self.node_counters[dst as usize];
            counter.delivered += 1;
            let duplicate = packet.duplicate;
            if duplicate {
                counter.redelivered += 1;
            }
            if !relays {
                let latency = now - created_at;
                counter.latency.add(latency, inv);
                let counter = self.topic_counter(topic);
                counter.delivered += 1;
                if duplicate {
                    counter.redelivered += 1;
                }
                counter.latency.add(latency, inv);
            }
            if self.tracer.enabled {
                let line = self.tracer.begin(
                    now,
                    "deliver",
                    &self.names[dst as usize],
                    &self.names[src as usize],
                    &self.topics[topic as usize],
                );
                message_id(line, &self.names[origin as usize], seq);
                line.push('\t');
                if duplicate {
                    line.push_str("dup");
                }
                self.tracer.end();
            }
        } else if self.tracer.enabled {
            let line = self.tracer.begin(
                now,
                "ack",
                &self.names[dst as usize],
                &self.names[src as usize],
                &self.topics[topic as usize],
            );
            message_id(line, &self.names[origin as usize], seq);
            line.push('\t');
            push_int(line, i64::from(packet.packet_id));
            self.tracer.end();
        }
        let publish = packet.kind == Kind::Publish;
        match self.kinds[dst as usize] {
            NodeRef::Broker => self.broker_packet(packet),
            NodeRef::Cloud => self.cloud_packet(packet),
            NodeRef::Sensor(_) => {
                if packet.kind == Kind::Puback {
                    self.session_of(dst).inflight.remove(&packet.packet_id);
                }
            }
            NodeRef::Gateway(index) => self.gateway_packet(index, packet),
            NodeRef::Foreign => self.foreign_call = Some(ForeignCall::Packet(packet)),
        }
        if publish && self.faults.is_some() {
            self.arrived_at(dst);
        }
    }

    // --- the broker ---------------------------------------------------------------------------
    fn broker_packet(&mut self, packet: Packet) {
        let packet = match self.faults.is_some() {
            false => packet,
            true => match self.broker_takes(packet) {
                Some(packet) => packet,
                None => return,
            },
        };
        if packet.kind == Kind::Puback {
            self.broker_session.inflight.remove(&packet.packet_id);
            return;
        }
        if packet.qos == 1 {
            self.reply_puback(self.broker, &packet);
        }
        if self.broker_delay.is_constant_zero() {
            self.route(packet.message);
            return;
        }
        let now = self.now;
        let start = if self.broker_busy_until > now {
            self.broker_busy_until
        } else {
            now
        };
        self.broker_busy_until = start + self.broker_delay.draw(&mut self.broker_stream);
        self.broker_queued += 1;
        let at = self.broker_busy_until;
        self.schedule(at, Event::Route(packet.message));
    }

    fn matching(&mut self, topic: u32) -> Rc<Vec<(u32, u8)>> {
        let known = self.matching_of[topic as usize];
        if known != u32::MAX {
            return self.matchings[known as usize].clone();
        }
        let name = &self.topics[topic as usize];
        let levels: Vec<&str> = name.split('/').collect();
        let system = name.starts_with('$');
        let mut found = Vec::new();
        for (filter, filter_levels, subscriber, qos) in &self.subscriptions {
            if system && (filter_levels[0] == "+" || filter_levels[0] == "#") {
                continue;
            }
            if filter == name || matches_levels(filter_levels, &levels) {
                found.push((*subscriber, *qos));
            }
        }
        let mut shared = self.matchings.iter().take(64);
        let position = match shared.position(|known| **known == found) {
            Some(position) => position,
            None => {
                self.matchings.push(Rc::new(found));
                self.matchings.len() - 1
            }
        };
        self.matching_of[topic as usize] = position as u32;
        self.matchings[position].clone()
    }

    fn route(&mut self, message: Rc<Message>) {
        if message.retain {
            self.retained.insert(message.topic, ());
        }
        self.broker_routed += 1;
        let entries = self.matching(message.topic);
        if entries.is_empty() {
            self.ledger.drop(
                message.origin,
                message.seq,
                message.sources.as_deref().map(|v| v.as_slice()),
                sketch::NO_SUBSCRIBER,
            );
            return;
        }
        let broker = self.broker;
        for &(subscriber, subscription_qos) in entries.iter() {
            if message.qos == 0 || subscription_qos == 0 {
                self.transmit(Packet {
                    kind: Kind::Publish,
                    src: broker,
                    dst: subscriber,
                    message: message.clone(),
                    qos: 0,
                    packet_id: 0,
                    duplicate: false,
                    sent_at: 0,
                });
            } else {
                self.session_publish(broker, subscriber, message.clone(), false);
            }
        }
    }

    // --- the cloud ----------------------------------------------------------------------------
    fn cloud_packet(&mut self, packet: Packet) {
        if packet.kind == Kind::Puback {
            return;
        }
        if packet.qos == 1 {
            self.reply_puback(self.cloud, &packet);
        }
        self.cloud_received += 1;
        let message = &packet.message;
        self.ledger.arrive(
            self.cloud,
            message.origin,
            message.seq,
            message.sources.as_deref().map(|v| v.as_slice()),
        );
        if self.arrivals.len() < self.record_limit {
            self.arrivals.push((self.now, packet.message.clone()));
        }
    }

    // --- gateways (HostedGateway around GatewayLogic, no windows) ---------------------------
    fn gateway_packet(&mut self, index: u32, packet: Packet) {
        let packet = match self.faults.is_some() {
            false => packet,
            true => match self.gateway_takes(index, packet) {
                Some(packet) => packet,
                None => return,
            },
        };
        let node = self.gateways[index as usize].node;
        if packet.kind == Kind::Puback {
            self.gateways[index as usize]
                .session
                .inflight
                .remove(&packet.packet_id);
            return;
        }
        if packet.qos == 1 {
            self.reply_puback(node, &packet);
        }
        let message = packet.message;
        self.ledger.arrive(
            node,
            message.origin,
            message.seq,
            message.sources.as_deref().map(|v| v.as_slice()),
        );
        let now = self.now;
        let gateway = &mut self.gateways[index as usize];
        gateway.received += 1;
        gateway.pending.push(Inbound { at: now, message });
        if gateway.flush_at.is_none() {
            gateway.generation += 1;
            gateway.flush_at = Some(now);
            let generation = gateway.generation;
            self.schedule(now, Event::Flush(index, generation));
        } else if gateway.pending.len() == 1 {
            self.arm(index);
        }
    }

    fn arm(&mut self, index: u32) {
        let now = self.now;
        let gateway = &mut self.gateways[index as usize];
        let mut due = gateway.pending.first().map(|inbound| inbound.at);
        if let Some(timer) = gateway.next_timer {
            if due.map_or(true, |due| timer < due) {
                due = Some(timer);
            }
        }
        let Some(due) = due else { return };
        let target = if due < now { now } else { due };
        if let Some(flush_at) = gateway.flush_at {
            if flush_at <= target {
                return;
            }
        }
        gateway.generation += 1;
        gateway.flush_at = Some(target);
        let generation = gateway.generation;
        self.schedule(target, Event::Flush(index, generation));
    }

    fn flush(&mut self, index: u32, generation: u64) {
        if generation != self.gateways[index as usize].generation {
            return;
        }
        self.gateways[index as usize].flush_at = None;
        let now = self.now;
        self.advance(index, now);
        let gateway = &self.gateways[index as usize];
        if !gateway.pending.is_empty() || gateway.next_timer.is_some() {
            self.arm(index);
        }
    }

    /// `HostedGateway.advance` with `NodeRuntime.advance` and the logic's hooks inline.
    fn advance(&mut self, index: u32, t: Tick) {
        let gateway = &mut self.gateways[index as usize];
        let spare = std::mem::take(&mut gateway.spare_inbound);
        let inbound = std::mem::replace(&mut gateway.pending, spare);
        let mut position = 0;
        loop {
            let gateway = &mut self.gateways[index as usize];
            let next_timer = match gateway.timers.peek() {
                Some(entry) if entry.0 .0 <= t => Some(entry.0 .0),
                _ => None,
            };
            if position < inbound.len() {
                let at = inbound[position].at;
                if next_timer.map_or(true, |timer| at < timer) {
                    gateway.logic_now = at;
                    let message = inbound[position].message.clone();
                    position += 1;
                    self.on_message(index, at, message);
                    continue;
                }
            }
            let Some(timer) = next_timer else { break };
            let std::cmp::Reverse((_, _, name)) = gateway.timers.pop().unwrap();
            gateway.logic_now = timer;
            if name == PROCESSED {
                self.processed(index, timer);
            } else {
                self.close_window(index, timer);
            }
        }
        let gateway = &mut self.gateways[index as usize];
        gateway.logic_now = t;
        gateway.next_timer = gateway.logic_next_timer();
        let spare = std::mem::take(&mut gateway.spare_outputs);
        let mut outputs = std::mem::replace(&mut gateway.outputs, spare);
        for output in outputs.drain(..) {
            self.emit(index, output);
        }
        self.now = t;
        let mut inbound = inbound;
        inbound.clear();
        let gateway = &mut self.gateways[index as usize];
        gateway.spare_outputs = outputs;
        gateway.spare_inbound = inbound;
    }

    fn on_message(&mut self, index: u32, t: Tick, message: Rc<Message>) {
        let gateway = &mut self.gateways[index as usize];
        gateway.logic_received += 1;
        let busy = gateway.current.is_some();
        if gateway.queue.len() + busy as usize >= gateway.spec.capacity {
            if gateway.spec.drop_newest || gateway.queue.is_empty() {
                Self::overflow(gateway, &message);
                return;
            }
            let oldest = gateway.queue.pop_front().unwrap();
            Self::overflow(gateway, &oldest);
        }
        gateway.queue.push_back(message);
        if !busy {
            self.start_next(index, t);
        }
    }

    fn overflow(gateway: &mut Gateway, message: &Message) {
        gateway.logic_overflow += 1;
        gateway.outputs.push(Output::Drop {
            t: gateway.logic_now,
            topic: message.topic,
            origin: message.origin,
            seq: message.seq,
            reason: "queue_overflow",
            sources: message.sources.clone(),
        });
    }

    fn start_next(&mut self, index: u32, t: Tick) {
        loop {
            let gateway = &mut self.gateways[index as usize];
            gateway.current = gateway.queue.pop_front();
            let delay = gateway.spec.delay.draw(&mut gateway.delay_stream);
            let timer = gateway.logic_next_timer();
            if delay != 0 || timer.is_some_and(|timer| timer <= t) {
                gateway.set_timer(t + delay, PROCESSED);
                return;
            }
            self.complete(index, t);
            let gateway = &mut self.gateways[index as usize];
            if gateway.queue.is_empty() {
                gateway.current = None;
                return;
            }
        }
    }

    fn processed(&mut self, index: u32, t: Tick) {
        self.complete(index, t);
        if self.gateways[index as usize].queue.is_empty() {
            self.gateways[index as usize].current = None;
        } else {
            self.start_next(index, t);
        }
    }

    fn complete(&mut self, index: u32, _t: Tick) {
        let names = &self.names;
        let topics = &self.topics;
        let Gateway {
            spec,
            current,
            processed,
            rejected,
            groups,
            group_of,
            outputs,
            logic_now,
            ..
        } = &mut self.gateways[index as usize];
        let stamp = *logic_now;
        let message = current.clone().expect("a reading being processed");
        *processed += 1;
        let Some(aggregate) = &spec.aggregate else {
            let mut detail = String::new();
            message_id(&mut detail, &names[message.origin as usize], message.seq);
            let sources = match &message.sources {
                Some(sources) => sources.clone(),
                None => Rc::new(vec![(message.origin, message.seq, message.seq)]),
            };
            outputs.push(Output::Publish {
                t: stamp,
                payload: message.payload.clone(),
                created_at: Some(message.created_at),
                detail,
                sources,
            });
            return;
        };
        let value = match &message.payload {
            Payload::Float(value) if value.is_finite() => *value,
            _ => {
                if let Payload::Object(_) = message.payload {
                    self.object_aggregated = true; // (the run is refused: see the field)
                }
                *rejected += 1;
                outputs.push(Output::Drop {
                    t: stamp,
                    topic: message.topic,
                    origin: message.origin,
                    seq: message.seq,
                    reason: "not_a_number",
                    sources: message.sources.clone(),
                });
                return;
            }
        };
        let id = match aggregate.group_by {
            1 => message.topic,
            2 => message.origin,
            _ => 0,
        };
        let position = match group_of.get(&id) {
            Some(&position) => position,
            None => {
                let key: &str = match aggregate.group_by {
                    1 => &topics[message.topic as usize],
                    2 => &names[message.origin as usize],
                    _ => "",
                };
                groups.push((key.to_string(), Group::new()));
                group_of.insert(id, groups.len() - 1);
                groups.len() - 1
            }
        };
        let (key, group) = &mut groups[position];
        group.count += 1;
        group.total += value;
        if value < group.minimum {
            group.minimum = value;
        }
        if value > group.maximum {
            group.maximum = value;
        }
        group.last = value;
        match &message.sources {
            Some(sources) => {
                for &(origin, first, last) in sources.iter() {
                    extend(group, origin, first, last);
                }
            }
            None => extend(group, message.origin, message.seq, message.seq),
        }
        if aggregate.count.is_some_and(|count| group.count >= count) {
            outputs.push(emit_group(aggregate, key, group, stamp));
        }
    }

    fn close_window(&mut self, index: u32, t: Tick) {
        let gateway = &mut self.gateways[index as usize];
        let Gateway {
            spec,
            groups,
            outputs,
            ..
        } = gateway;
        let aggregate = spec
            .aggregate
            .as_ref()
            .expect("a window needs an aggregate");
        // every group with readings, in key order (`sorted(self._groups.items())`)
        let mut order: Vec<usize> = (0..groups.len())
            .filter(|&g| groups[g].1.count > 0)
            .collect();
        order.sort_by(|&a, &b| groups[a].0.cmp(&groups[b].0));
        for position in order {
            let (key, group) = &mut groups[position];
            outputs.push(emit_group(aggregate, key, group, t));
        }
        let window = aggregate.window.expect("a window");
        gateway.set_timer(t + window, WINDOW);
    }

    fn emit(&mut self, index: u32, output: Output) {
        let node = self.gateways[index as usize].node;
        let mut now = match &output {
            Output::Publish { t, .. } | Output::Drop { t, .. } => *t,
        };
        if self.faults.is_some() {
            now = now.max(self.not_before(index));
        }
        self.now = now; // the output happens at its own time (HostedGateway._emit)
        match output {
            Output::Publish {
                t: _,
                payload,
                created_at,
                detail,
                sources,
            } => {
                let gateway = &mut self.gateways[index as usize];
                gateway.forwarded += 1;
                gateway.sent_seq += 1;
                let seq = gateway.sent_seq;
                let spec = &gateway.spec;
                let (topic, qos, bytes, to) = (
                    spec.forward_topic,
                    spec.forward_qos,
                    spec.forward_bytes,
                    spec.forward_to,
                );
                let message = Rc::new(Message {
                    topic,
                    payload,
                    origin: node,
                    seq,
                    created_at: created_at.unwrap_or(now),
                    qos,
                    retain: false,
                    size_bytes: bytes,
                    sources: Some(sources),
                });
                let counter = self.topic_counter(topic);
                counter.sent += 1;
                counter.bytes += bytes as u64;
                if self.tracer.enabled {
                    let line = self.tracer.begin(
                        now,
                        "forward",
                        &self.names[node as usize],
                        &self.names[to as usize],
                        &self.topics[topic as usize],
                    );
                    message_id(line, &self.names[node as usize], seq);
                    line.push('\t');
                    line.push_str(&detail);
                    self.tracer.end();
                }
                if self.faults.is_some() && self.store_takes(index, &message) {
                    return;
                }
                self.publish(node, to, message, qos);
            }
            Output::Drop {
                t: _,
                topic,
                origin,
                seq,
                reason,
                sources,
            } => {
                let cause = if reason == "queue_overflow" {
                    sketch::QUEUE_OVERFLOW
                } else {
                    sketch::REJECTED
                };
                let gateway = &mut self.gateways[index as usize];
                if cause == sketch::QUEUE_OVERFLOW {
                    gateway.dropped_overflow += 1;
                } else {
                    gateway.dropped_rejected += 1;
                }
                self.node_counters[node as usize].drop(cause);
                self.topic_counter(topic).drop(cause);
                self.ledger
                    .drop(origin, seq, sources.as_deref().map(|v| v.as_slice()), cause);
                if self.tracer.enabled {
                    let line = self.tracer.begin(
                        now,
                        "drop",
                        &self.names[node as usize],
                        &self.names[origin as usize],
                        &self.topics[topic as usize],
                    );
                    message_id(line, &self.names[origin as usize], seq);
                    line.push('\t');
                    line.push_str(reason);
                    self.tracer.end();
                }
            }
        }
    }
}

fn extend(group: &mut Group, origin: u32, first: i64, last: i64) {
    const INDEXED: usize = 16;
    let found = if group.sources.len() <= INDEXED {
        group.sources.iter().position(|(known, _)| *known == origin)
    } else {
        if group.source_index.is_empty() {
            for (position, (known, _)) in group.sources.iter().enumerate() {
                group.source_index.insert(*known, position);
            }
        }
        group.source_index.get(&origin).copied()
    };
    match found.as_ref() {
        None => {
            if !group.source_index.is_empty() {
                group.source_index.insert(origin, group.sources.len());
            }
            let mut runs = group.spare_runs.pop().unwrap_or_default();
            runs.push((first, last));
            group.sources.push((origin, runs));
        }
        Some(&position) => {
            let runs = &mut group.sources[position].1;
            let tail = runs.last_mut().unwrap();
            if tail.1 + 1 == first {
                tail.1 = last;
            } else {
                runs.push((first, last));
            }
        }
    }
}

fn emit_group(aggregate: &AggregateSpec, key: &str, group: &mut Group, t: Tick) -> Output {
    let mut values: Vec<(Function, AggValue)> = Vec::with_capacity(aggregate.functions.len());
    for &function in &aggregate.functions {
        let value = match function {
            Function::Mean => AggValue::Float(group.total / group.count as f64),
            Function::Min => AggValue::Float(group.minimum),
            Function::Max => AggValue::Float(group.maximum),
            Function::Count => AggValue::Int(group.count),
            Function::Sum => AggValue::Float(group.total),
            Function::Last => AggValue::Float(group.last),
        };
        match values.iter_mut().find(|(f, _)| *f == function) {
            Some(slot) => slot.1 = value,
            None => values.push((function, value)),
        }
    }
    let mut detail = String::with_capacity(key.len() + 16 * values.len());
    if !key.is_empty() {
        detail.push_str(key);
    }
    for (function, value) in &values {
        if !detail.is_empty() {
            detail.push(' ');
        }
        detail.push_str(function.name());
        detail.push('=');
        match value {
            AggValue::Int(count) => {
                push_int(&mut detail, *count);
            }
            AggValue::Float(value) => format_g12(&mut detail, *value),
        }
    }
    let runs: usize = group.sources.iter().map(|(_, runs)| runs.len()).sum();
    let mut lineage = Vec::with_capacity(runs);
    for (origin, mut runs) in group.sources.drain(..) {
        lineage.extend(runs.iter().map(|&(first, last)| (origin, first, last)));
        runs.clear();
        group.spare_runs.push(runs);
    }
    let payload = AggPayload {
        values,
        group: if aggregate.group_by != 0 {
            Some(key.to_string())
        } else {
            None
        },
    };
    group.source_index.clear();
    group.count = 0;
    group.total = 0.0;
    group.minimum = f64::INFINITY;
    group.maximum = f64::NEG_INFINITY;
    Output::Publish {
        t,
        payload: Payload::Aggregate(Rc::new(payload)),
        created_at: None,
        detail,
        sources: Rc::new(lineage),
    }
}

pub fn matches_levels(filter_levels: &[String], topic_levels: &[&str]) -> bool {
    let count = topic_levels.len();
    for (index, level) in filter_levels.iter().enumerate() {
        if level == "#" {
            return true;
        }
        if index >= count {
            return false;
        }
        if level != "+" && level != topic_levels[index] {
            return false;
        }
    }
    filter_levels.len() == count
}
