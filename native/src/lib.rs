//! `pytest_edgesim.core._native`: the native simulation engine (see docs/engine.md).
//!
//! Python builds the plan (`pytest_edgesim/core/native.py`): node names, link rules, the
//! sensors', broker's and gateways' settings, all already validated by the scenario; this
//! module runs it and hands back the raw counters, which Python turns into the same
//! `RunResult` the pure engine gives.

mod engine;
mod fmt;
mod ledger;
mod rng;
mod sketch;

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use engine::faults::{Action, Fault, Life, Trigger};
use engine::{
    AggValue, AggregateSpec, Engine, ForeignCall, Function, GatewaySpec, Jitter, Loss, Message,
    Packet, Payload, Profile, ProfileSource, SensorSpec, Setup, Value,
};
use rng::Delay;

/// The engine allocates and frees a message or two per reading, thousands in flight among
/// a big fleet's state: mimalloc keeps that local and cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct PythonProfiles {
    callable: PyObject,
}

impl ProfileSource for PythonProfiles {
    fn profile(&mut self, rules: &[u32]) -> Profile {
        Python::with_gil(|py| {
            let fields: (i64, u8, i64, u8, f64, f64, f64, f64, f64, i64, bool) = self
                .callable
                .call1(py, (rules.to_vec(),))
                .and_then(|value| value.extract(py))
                .expect("the link profile callback returns a profile tuple");
            Profile {
                latency: fields.0,
                jitter: match fields.1 {
                    0 => Jitter::None,
                    1 => Jitter::Uniform,
                    _ => Jitter::Normal,
                },
                jitter_ticks: fields.2,
                loss: match fields.3 {
                    0 => Loss::None,
                    1 => Loss::Bernoulli,
                    _ => Loss::GilbertElliott,
                },
                loss_rate: fields.4,
                p_good_to_bad: fields.5,
                p_bad_to_good: fields.6,
                loss_good: fields.7,
                loss_bad: fields.8,
                bandwidth_bps: fields.9,
                reorder: fields.10,
            }
        })
    }
}

fn delay(spec: (u8, i64, i64)) -> Delay {
    match spec.0 {
        0 => Delay::Constant(spec.1),
        1 => Delay::Uniform(spec.1, spec.2),
        2 => Delay::Exponential(spec.1),
        _ => Delay::Normal(spec.1, spec.2),
    }
}

fn function(code: u8) -> Function {
    match code {
        0 => Function::Mean,
        1 => Function::Min,
        2 => Function::Max,
        3 => Function::Count,
        4 => Function::Sum,
        _ => Function::Last,
    }
}

type SensorSpecTuple = (
    u8,
    bool,
    i64,
    bool,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    f64,
);
type ValueSpecTuple = (
    u8,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    i64,
    Vec<f64>,
    bool,
    String,
);
type AggregateTuple = (Option<i64>, Option<i64>, Vec<u8>, u8);
type GatewayTuple = (
    u32,
    Vec<(String, u8)>,
    u32,
    String,
    u8,
    i64,
    usize,
    bool,
    (u8, i64, i64),
    Option<AggregateTuple>,
);

fn gateway_spec(engine: &mut Engine, g: GatewayTuple) -> GatewaySpec {
    let forward_topic = engine.intern_topic(&g.3);
    GatewaySpec {
        subscriptions: g.1,
        forward_to: g.2,
        forward_topic,
        forward_qos: g.4,
        forward_bytes: g.5,
        capacity: g.6,
        drop_newest: g.7,
        delay: delay(g.8),
        aggregate: g.9.map(|a| AggregateSpec {
            count: a.0,
            window: a.1,
            functions: a.2.into_iter().map(function).collect(),
            group_by: a.3,
        }),
    }
}

/// (begin record's action, end record's action, target, duration, begin detail, end detail)
type FaultHead = (String, String, String, Option<i64>, String, String);
/// (code: 0 at, 1 after, 2 received, 3 dropped, 4 never, 5 subscribed; time or delay; node
/// or src; dst; count)
type TriggerTuple = (u8, i64, u32, u32, i64);
/// (code: 0 cut, 1 link change, 2 backhaul, 3 storage full, 4 duty cycle, 5 clock skew, 6 a
/// gateway's life, 7 the broker's; cut; gateway; link pairs; (latency, jitter, loss, bandwidth); sensors;
/// (period, awake, buffer); (offset, drift_ppm); (begin, end) life actions: 0 stop, 1 kill,
/// 2 start, 3 restart, 4 disconnect, 5 reconnect, 6 pause, 7 resume, and the broker's
/// persistence)
type ActionTuple = (
    u8,
    u32,
    u32,
    Vec<(u32, u32)>,
    (Option<i64>, Option<i64>, Option<f64>, Option<i64>),
    Vec<u32>,
    (i64, i64, bool),
    (i64, f64),
    (u8, u8, bool),
);
type FaultTuple = (
    FaultHead,
    TriggerTuple,
    ActionTuple,
    (Vec<(u32, i64)>, Vec<(u32, i64)>),
);

fn fault(plan: FaultTuple) -> Fault {
    let (head, trigger, action, (on_start, on_end)) = plan;
    let trigger = match trigger.0 {
        0 => Trigger::At(trigger.1),
        1 => Trigger::Dependent,
        2 => Trigger::Received {
            node: trigger.2,
            count: trigger.4,
            delay: trigger.1,
        },
        3 => Trigger::Dropped {
            src: trigger.2,
            dst: trigger.3,
            count: trigger.4,
            delay: trigger.1,
        },
        5 => Trigger::Subscribed {
            node: trigger.2,
            count: trigger.4,
            delay: trigger.1,
        },
        _ => Trigger::Never,
    };
    let life = |code: u8| match code {
        0 => Life::Stop,
        1 => Life::Kill,
        2 => Life::Start,
        3 => Life::Restart,
        4 => Life::Disconnect,
        5 => Life::Reconnect,
        6 => Life::Pause,
        _ => Life::Resume,
    };
    let action = match action.0 {
        0 => Action::Cut(action.1),
        1 => Action::LinkChange {
            pairs: action.3,
            latency: action.4 .0,
            jitter: action.4 .1,
            loss: action.4 .2,
            bandwidth: action.4 .3,
        },
        2 => Action::Backhaul {
            gateway: action.2,
            cut: action.1,
        },
        3 => Action::StorageFull(action.2),
        6 => Action::Life {
            gateway: action.2,
            begin: life(action.8 .0),
            end: life(action.8 .1),
        },
        7 => Action::BrokerLife {
            begin: life(action.8 .0),
            end: life(action.8 .1),
            persistence: action.8 .2,
        },
        5 => Action::ClockSkew {
            sensors: action.5,
            offset: action.7 .0,
            drift_ppm: action.7 .1,
        },
        _ => Action::DutyCycle {
            sensors: action.5,
            period: action.6 .0,
            awake: action.6 .1,
            buffer: action.6 .2,
        },
    };
    Fault {
        name: head.0,
        end_name: head.1,
        target: head.2,
        duration: head.3,
        begin_detail: head.4,
        end_detail: head.5,
        trigger,
        action,
        on_start,
        on_end,
    }
}

/// One run of a scenario on the native engine.
#[pyclass(unsendable, module = "pytest_edgesim.core._native")]
struct NativeRun {
    engine: Engine,
    /// the Python nodes' callbacks: `timer(call, now)` and `packet(now, node, *packet)` (see
    /// `core/native_nodes.py`)
    foreign: Option<(PyObject, PyObject)>,
}

#[pymethods]
impl NativeRun {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (seed, names, broker, cloud, trace, record_limit, retry_interval, broker_delay, direct, rule_from, rule_to, rule_bidirectional, profile_of, cuts, sensor_specs, value_specs, sensors, gateways))]
    fn new(
        seed: String,
        names: Vec<String>,
        broker: u32,
        cloud: u32,
        trace: bool,
        record_limit: usize,
        retry_interval: i64,
        broker_delay: (u8, i64, i64),
        direct: bool,
        rule_from: Vec<u64>,
        rule_to: Vec<u64>,
        rule_bidirectional: Vec<bool>,
        profile_of: PyObject,
        cuts: Vec<(Vec<u32>, Vec<u32>, i64, Option<i64>)>,
        sensor_specs: Vec<SensorSpecTuple>,
        value_specs: Vec<ValueSpecTuple>,
        sensors: Vec<(u32, String, u32, u32)>,
        gateways: Vec<GatewayTuple>,
    ) -> NativeRun {
        let mut engine = Engine::new(Setup {
            seed,
            names,
            broker,
            cloud,
            trace,
            record_limit,
            retry_interval,
            broker_delay: delay(broker_delay),
            direct,
            rule_from,
            rule_to,
            rule_bidirectional,
            cuts,
        });
        engine.profile_source = Some(Box::new(PythonProfiles {
            callable: profile_of,
        }));
        engine.bind_cloud();
        let specs: Vec<SensorSpec> = sensor_specs
            .into_iter()
            .map(|s| SensorSpec {
                qos: s.0,
                retain: s.1,
                payload_bytes: s.2,
                periodic: s.3,
                period: s.4,
                jitter: s.5,
                offset: s.6,
                start: s.7,
                stop: s.8,
                rate: s.9,
            })
            .collect();
        engine.sensor_specs = specs;
        let replays: Vec<Rc<Vec<f64>>> = value_specs.iter().map(|v| Rc::new(v.8.clone())).collect();
        let spellings: Vec<Rc<str>> = value_specs
            .iter()
            .map(|v| Rc::from(v.10.as_str()))
            .collect();
        for (node, topic, spec, value) in sensors {
            let v = &value_specs[value as usize];
            let name = &engine.names[node as usize];
            let value_stream =
                || Stream::new(&engine_seed(&engine), &format!("node:{}/value", name));
            let source = match v.0 {
                0 => Value::Constant(v.1, spellings[value as usize].clone()),
                1 => Value::Walk {
                    state: v.1,
                    step: v.2,
                    low: v.5,
                    high: v.6,
                    stream: Box::new(value_stream()),
                },
                2 => Value::Sine {
                    mean: v.1,
                    amplitude: v.2,
                    omega: v.3,
                    phase: v.7,
                    noise: v.4,
                    stream: if v.4 != 0.0 {
                        Some(Box::new(value_stream()))
                    } else {
                        None
                    },
                },
                _ => Value::Replay {
                    values: replays[value as usize].clone(),
                    position: 0,
                    looped: v.9,
                },
            };
            engine.add_sensor(node, &topic, spec, source);
        }
        for g in gateways {
            let node = g.0;
            let spec = gateway_spec(&mut engine, g);
            engine.add_gateway(node, spec);
        }
        NativeRun {
            engine,
            foreign: None,
        }
    }

    /// Arm the fault schedule (before the first run): the faults' cuts (sides, one way),
    /// each gateway's buffer (capacity, drop newest) and the faults, as
    /// `core/native_faults.py` plans them.
    fn arm_faults(
        &mut self,
        cuts: Vec<(Vec<u32>, Vec<u32>, bool)>,
        buffers: Vec<Option<(usize, bool)>>,
        faults: Vec<FaultTuple>,
    ) {
        let faults = faults.into_iter().map(fault).collect();
        self.engine.arm_faults(cuts, buffers, faults);
    }

    /// The faults done ((time, action, target, detail) in order) and each gateway's buffer
    /// and life (waiting, lost to storage_full, lost as node_down), and what the broker lost
    /// down; None without a schedule.
    #[allow(clippy::type_complexity)]
    fn faults(
        &self,
    ) -> Option<(
        Vec<(i64, String, String, String)>,
        Vec<(usize, i64, i64)>,
        i64,
    )> {
        let state = self.engine.faults.as_ref()?;
        let stores = state
            .stores
            .iter()
            .zip(&state.lives)
            .map(|(store, life)| (store.buffered(), store.dropped, life.dropped_down))
            .collect();
        Some((state.applied.clone(), stores, state.broker.dropped_down))
    }

    /// Run every event before `until` (ticks); the clock then reads `until`. What concerns
    /// a Python node is handed to its callbacks on the way, the engine free meanwhile.
    fn run(slf: &Bound<'_, Self>, until: i64) -> PyResult<()> {
        let py = slf.py();
        loop {
            let call = {
                let mut this = slf.borrow_mut();
                this.engine.run(until);
                this.engine.foreign_call.take()
            };
            let Some(call) = call else { return Ok(()) };
            let this = slf.borrow();
            let (timer, packet) = this
                .foreign
                .as_ref()
                .expect("the Python nodes' callbacks are set");
            match call {
                ForeignCall::Timer(number) => {
                    let timer = timer.clone_ref(py);
                    let now = this.engine.now;
                    drop(this);
                    timer.call1(py, (number, now))?;
                }
                ForeignCall::CutsChanged => {
                    let timer = timer.clone_ref(py);
                    let now = this.engine.now;
                    drop(this);
                    timer.call1(py, (0, now))?;
                }
                ForeignCall::Packet(delivered) => {
                    let args = packet_tuple(py, &this.engine, &delivered)?;
                    let packet = packet.clone_ref(py);
                    drop(this);
                    packet.call1(py, args)?;
                }
            }
        }
    }

    #[getter]
    fn now(&self) -> i64 {
        self.engine.now
    }

    #[getter]
    fn events(&self) -> u64 {
        self.engine.events
    }

    fn digest(&mut self) -> String {
        self.engine.tracer.digest()
    }

    /// The counters, each distinct value once: (node positions sorted by name, their
    /// counters; link keys (`src->dst`) sorted, their counters; topics sorted, their
    /// counters; the distinct counters as `freeze` reads them; the topics' totals). A counter
    /// is its position in the distinct ones.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let engine = &self.engine;
        let mut distinct = Distinct::new(py);
        let names = &engine.names;
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut node_counters = Vec::with_capacity(order.len());
        for &node in &order {
            node_counters.push(distinct.position(&engine.node_counters[node as usize])?);
        }
        let mut links: Vec<(String, u32)> = Vec::with_capacity(engine.links.len());
        for link in &engine.links {
            let key = format!("{}->{}", names[link.src as usize], names[link.dst as usize]);
            links.push((key, distinct.position(&link.counter)?));
        }
        links.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut topics: Vec<(&str, u32)> = Vec::with_capacity(engine.topic_order.len());
        let mut totals = sketch::Counter::new();
        for &topic in &engine.topic_order {
            let counter = engine.topic_counters[topic as usize].as_ref().unwrap();
            topics.push((
                engine.topics[topic as usize].as_str(),
                distinct.position(counter)?,
            ));
            totals.add(counter);
        }
        topics.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let totals = counter_tuple(py, &CounterKey::of(&totals))?;
        let (link_keys, link_counters): (Vec<String>, Vec<u32>) = links.into_iter().unzip();
        let (topic_keys, topic_counters): (Vec<&str>, Vec<u32>) = topics.into_iter().unzip();
        let items: Vec<PyObject> = vec![
            order.into_pyobject(py)?.into_any().unbind(),
            node_counters.into_pyobject(py)?.into_any().unbind(),
            link_keys.into_pyobject(py)?.into_any().unbind(),
            link_counters.into_pyobject(py)?.into_any().unbind(),
            topic_keys.into_pyobject(py)?.into_any().unbind(),
            topic_counters.into_pyobject(py)?.into_any().unbind(),
            distinct.raws.into_any().unbind(),
            totals.into_any().unbind(),
        ];
        PyTuple::new(py, items)
    }

    /// The nodes' own numbers: sensors (published, in flight), broker (routed, retained,
    /// in flight), cloud received, gateways (hosted and logic counts).
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let engine = &self.engine;
        let sensors = PyList::empty(py);
        for sensor in &engine.sensors {
            sensors.append((sensor.published, sensor.session.inflight.len()))?;
        }
        let gateways = PyList::empty(py);
        for gateway in &engine.gateways {
            gateways.append((
                gateway.received,
                gateway.forwarded,
                gateway.dropped_overflow,
                gateway.dropped_rejected,
                gateway.session.inflight.len(),
                (
                    gateway.logic_received,
                    gateway.processed,
                    gateway.queued(),
                    gateway.logic_overflow,
                    gateway.rejected,
                    gateway.pending_in_aggregate(),
                ),
            ))?;
        }
        let broker = (
            engine.broker_routed,
            engine.retained.len(),
            engine.broker_session.inflight.len(),
        );
        let items: Vec<PyObject> = vec![
            sensors.into_any().unbind(),
            broker.into_pyobject(py)?.into_any().unbind(),
            engine.cloud_received.into_pyobject(py)?.into_any().unbind(),
            gateways.into_any().unbind(),
        ];
        PyTuple::new(py, items)
    }

    /// `DeliveryLedger.snapshot` of the run's ledger, each distinct flow once: (the distinct
    /// flows as (sent, delivered, lost, duplicated, reordered, ((cause, count), ...)); per
    /// destination (node, origin nodes, their flows' positions); the sources (sensors, then
    /// other origins of drops) with the gateways each one's readings reached).
    fn deliveries<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let engine = &self.engine;
        let ledger = &engine.ledger;
        let mut sources: Vec<ledger::Source> = engine
            .sensors
            .iter()
            .map(|sensor| ledger::Source {
                node: sensor.node,
                sent: sensor.published,
                topic: Some(engine.topics[sensor.topic as usize].as_str()),
            })
            .collect();
        for (origin, dropped) in ledger.dropped.iter().enumerate() {
            let is_sensor = matches!(engine.kinds[origin], engine::NodeRef::Sensor(_));
            if !dropped.is_empty() && !is_sensor {
                sources.push(ledger::Source {
                    node: origin as u32,
                    sent: 0,
                    topic: None,
                });
            }
        }
        let filters = |node: u32| match engine.kinds[node as usize] {
            engine::NodeRef::Gateway(index) => Some(
                engine.gateways[index as usize]
                    .spec
                    .subscriptions
                    .iter()
                    .map(|(filter, _)| filter.clone())
                    .collect(),
            ),
            _ => None,
        };
        let snapshot = ledger.snapshot(&sources, &filters);
        let flows = PyList::empty(py);
        for flow in &snapshot.flows {
            let causes: Vec<(&str, i64)> = flow
                .causes
                .iter()
                .map(|&(cause, count)| (ledger::LOST_CAUSES[cause as usize], count))
                .collect();
            flows.append((
                flow.sent,
                flow.delivered,
                flow.lost,
                flow.duplicated,
                flow.reordered,
                causes,
            ))?;
        }
        let source_nodes: Vec<u32> = sources.iter().map(|source| source.node).collect();
        let items: Vec<PyObject> = vec![
            flows.into_any().unbind(),
            snapshot.tables.into_pyobject(py)?.into_any().unbind(),
            source_nodes.into_pyobject(py)?.into_any().unbind(),
            snapshot.reached.into_pyobject(py)?.into_any().unbind(),
        ];
        PyTuple::new(py, items)
    }

    /// The delivery ledger as it is (the read-back of a run with Python nodes): (drops: [(origin, [(cause, runs)])], destinations:
    /// [(node, [(origin, runs, highest, duplicated, reordered)])]).
    fn ledger<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let ledger = &self.engine.ledger;
        let drops = PyList::empty(py);
        for (origin, dropped) in ledger.dropped.iter().enumerate() {
            if dropped.is_empty() {
                continue;
            }
            let causes = PyList::empty(py);
            for (cause, seqs) in dropped {
                causes.append((sketch::CAUSES[*cause as usize], seqs.runs.clone()))?;
            }
            drops.append((origin, causes))?;
        }
        let destinations = PyList::empty(py);
        for destination in &ledger.destinations {
            let records = PyList::empty(py);
            for (origin, record) in destination.origins.iter().zip(&destination.received) {
                records.append((
                    *origin,
                    record.seqs.runs.clone(),
                    record.highest,
                    record.duplicated,
                    record.reordered,
                ))?;
            }
            destinations.append((destination.node, records))?;
        }
        PyTuple::new(py, [drops.into_any(), destinations.into_any()])
    }

    /// What reached the cloud (the first `record_limit`): (time, topic, payload, origin,
    /// seq, created_at) tuples.
    fn arrivals<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let engine = &self.engine;
        let out = PyList::empty(py);
        let mut strings: std::collections::HashMap<(bool, u32), Bound<'py, PyString>> =
            std::collections::HashMap::new();
        let mut shared = |names: bool, index: u32| {
            strings
                .entry((names, index))
                .or_insert_with(|| {
                    let text = if names {
                        &engine.names[index as usize]
                    } else {
                        &engine.topics[index as usize]
                    };
                    PyString::new(py, text)
                })
                .clone()
        };
        for (time, message) in &engine.arrivals {
            let payload = payload_object(py, &message.payload)?;
            out.append((
                *time,
                shared(false, message.topic),
                payload,
                shared(true, message.origin),
                message.seq,
                message.created_at,
            ))?;
        }
        Ok(out)
    }

    // --- Python nodes (see engine/foreign.rs and core/native_nodes.py) ----------------------
    /// The Python nodes' callbacks: `timer(call, now)` and `packet(*packet_tuple)`.
    fn set_foreign(&mut self, timer: PyObject, packet: PyObject) {
        self.foreign = Some((timer, packet));
    }

    /// Gateway `g` (as the constructor takes them), bound now: the run binds its gateways
    /// one by one, in order, when some are Python nodes.
    fn add_gateway(&mut self, g: GatewayTuple) {
        let node = g.0;
        let spec = gateway_spec(&mut self.engine, g);
        self.engine.add_gateway(node, spec);
    }

    // (the callbacks are bound methods of objects that hold this run: a cycle the garbage
    // collector must see through)
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some((timer, packet)) = &self.foreign {
            visit.call(timer)?;
            visit.call(packet)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.foreign = None;
    }

    /// Whether a gateway model was to aggregate a payload a Python node made (the run
    /// cannot go on natively: see `Engine::object_aggregated`).
    #[getter]
    fn object_aggregated(&self) -> bool {
        self.engine.object_aggregated
    }

    /// A Python node watches the partitions: `timer(0)` each time one goes down or heals.
    fn watch_cuts(&mut self) {
        self.engine.watching_cuts = true;
    }

    /// Node `node` is a Python node.
    fn add_foreign(&mut self, node: u32) {
        self.engine.add_foreign(node);
    }

    /// Put a Python node's packet on the network at `now` (its clock: a lockstep gateway's
    /// output happens at its own time within an advance).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (now, puback, src, dst, qos, packet_id, duplicate, topic, payload, origin, seq, created_at, message_qos, retain, size_bytes, sources))]
    fn send(
        &mut self,
        py: Python<'_>,
        now: i64,
        puback: bool,
        src: u32,
        dst: u32,
        qos: u8,
        packet_id: u32,
        duplicate: bool,
        topic: &str,
        payload: PyObject,
        origin: u32,
        seq: i64,
        created_at: i64,
        message_qos: u8,
        retain: bool,
        size_bytes: i64,
        sources: Option<Vec<(u32, i64, i64)>>,
    ) -> PyResult<()> {
        let bound = payload.bind(py);
        let payload = if bound.is_exact_instance_of::<PyFloat>() {
            Payload::Float(bound.extract()?)
        } else {
            Payload::Object(Rc::new(payload))
        };
        let topic = self.engine.intern_topic(topic);
        let message = Message {
            topic,
            payload,
            origin,
            seq,
            created_at,
            qos: message_qos,
            retain,
            size_bytes,
            sources: sources.map(Rc::new),
        };
        let packet = Engine::foreign_packet(puback, src, dst, qos, packet_id, duplicate, message);
        self.engine.now = now;
        self.engine.foreign_send(packet);
        Ok(())
    }

    /// A Python node's timer `call` at `time` (not before now).
    fn schedule(&mut self, time: i64, call: u64) {
        self.engine.foreign_schedule(time, call);
    }

    /// The time of the next event (None: none).
    fn peek(&self) -> Option<i64> {
        self.engine.peek()
    }

    /// One trace line of a Python node.
    #[allow(clippy::too_many_arguments)]
    fn trace(
        &mut self,
        time: i64,
        kind: &str,
        node: &str,
        peer: &str,
        topic: &str,
        message: &str,
        detail: &str,
    ) {
        self.engine
            .foreign_trace(time, kind, node, peer, topic, message, detail);
    }

    /// A subscription of node `node` at the broker.
    fn subscribe(&mut self, node: u32, filter: &str, qos: u8) {
        self.engine.subscribe(node, filter, qos);
    }

    fn retained_count(&self) -> usize {
        self.engine.retained_count()
    }

    fn is_partitioned(&self, src: u32, dst: u32) -> bool {
        self.engine.is_partitioned(src, dst)
    }

    /// The delivery ledger's destination `node` (made once).
    fn ledger_destination(&mut self, node: u32) {
        self.engine.foreign_destination(node);
    }

    #[pyo3(signature = (node, origin, seq, sources))]
    fn ledger_arrive(
        &mut self,
        node: u32,
        origin: u32,
        seq: i64,
        sources: Option<Vec<(u32, i64, i64)>>,
    ) {
        self.engine
            .ledger
            .arrive(node, origin, seq, sources.as_deref());
    }

    #[pyo3(signature = (origin, seq, sources, cause))]
    fn ledger_drop(
        &mut self,
        origin: u32,
        seq: i64,
        sources: Option<Vec<(u32, i64, i64)>>,
        cause: &str,
    ) {
        let code = Engine::cause_code(cause);
        self.engine
            .ledger
            .drop(origin, seq, sources.as_deref(), code);
    }

    /// Forwards that arrived without lineage: [(destination node, [(origin, count)])].
    fn without_lineage(&self) -> Vec<(u32, Vec<(u32, i64)>)> {
        self.engine
            .ledger
            .destinations
            .iter()
            .filter(|destination| !destination.without_lineage.is_empty())
            .map(|destination| (destination.node, destination.without_lineage.clone()))
            .collect()
    }
}

use rng::Stream;

/// A message's payload as Python holds it (a reading's float, an aggregate's dict, or the
/// object a Python node sent).
fn payload_object(py: Python<'_>, payload: &Payload) -> PyResult<PyObject> {
    Ok(match payload {
        Payload::Float(value) => value.into_pyobject(py)?.into_any().unbind(),
        Payload::Aggregate(aggregate) => {
            let dict = PyDict::new(py);
            for (function, value) in &aggregate.values {
                match value {
                    AggValue::Float(v) => dict.set_item(function.name(), v)?,
                    AggValue::Int(v) => dict.set_item(function.name(), v)?,
                }
            }
            if let Some(group) = &aggregate.group {
                dict.set_item("group", group)?;
            }
            dict.into_any().unbind()
        }
        Payload::Object(object) => object
            .downcast_ref::<PyObject>()
            .expect("a Python payload")
            .clone_ref(py),
    })
}

/// A packet delivered to a Python node, as `NativeNodes.packet` takes it: (now, node, puback,
/// src, qos, packet_id, duplicate, sent_at, topic, payload, origin, seq, created_at,
/// message qos, retain, size_bytes, sources or None).
fn packet_tuple<'py>(
    py: Python<'py>,
    engine: &Engine,
    packet: &Packet,
) -> PyResult<Bound<'py, PyTuple>> {
    let message = &packet.message;
    let names = &engine.names;
    let sources: PyObject = match &message.sources {
        None => py.None(),
        Some(runs) => {
            let items: Vec<(&str, i64, i64)> = runs
                .iter()
                .map(|&(origin, first, last)| (names[origin as usize].as_str(), first, last))
                .collect();
            PyTuple::new(py, items)?.into_any().unbind()
        }
    };
    let items: Vec<PyObject> = vec![
        engine.now.into_pyobject(py)?.into_any().unbind(),
        packet.dst.into_pyobject(py)?.into_any().unbind(),
        (packet.kind == engine::Kind::Puback)
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind(),
        names[packet.src as usize]
            .as_str()
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        packet.qos.into_pyobject(py)?.into_any().unbind(),
        packet.packet_id.into_pyobject(py)?.into_any().unbind(),
        packet
            .duplicate
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind(),
        packet.sent_at.into_pyobject(py)?.into_any().unbind(),
        engine.topics[message.topic as usize]
            .as_str()
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        payload_object(py, &message.payload)?,
        names[message.origin as usize]
            .as_str()
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        message.seq.into_pyobject(py)?.into_any().unbind(),
        message.created_at.into_pyobject(py)?.into_any().unbind(),
        message.qos.into_pyobject(py)?.into_any().unbind(),
        message
            .retain
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind(),
        message.size_bytes.into_pyobject(py)?.into_any().unbind(),
        sources,
    ];
    PyTuple::new(py, items)
}

fn engine_seed(engine: &Engine) -> String {
    engine.seed_text()
}

/// A counter's value as `freeze` reads it: (sent, delivered, drops, redelivered, bytes,
/// latency summary (count, min, mean, p50, p95, p99, max: the floats' bits) or None).
#[derive(PartialEq, Eq, Hash)]
struct CounterKey {
    sent: u64,
    delivered: u64,
    dropped: [u64; 7],
    redelivered: u64,
    bytes: u64,
    summary: Option<(u64, [u64; 6])>,
}

impl CounterKey {
    fn of(counter: &sketch::Counter) -> CounterKey {
        let summary = (counter.latency.count > 0).then(|| {
            let (count, low, mean, p50, p95, p99, high) = counter.latency.summary_ms();
            let floats = [low, mean, p50, p95, p99, high];
            (count, floats.map(f64::to_bits))
        });
        CounterKey {
            sent: counter.sent,
            delivered: counter.delivered,
            dropped: counter.dropped,
            redelivered: counter.redelivered,
            bytes: counter.bytes,
            summary,
        }
    }
}

/// The distinct counters, each made once as a Python tuple.
struct Distinct<'py> {
    py: Python<'py>,
    known: std::collections::HashMap<CounterKey, u32>,
    raws: Bound<'py, PyList>,
}

impl<'py> Distinct<'py> {
    fn new(py: Python<'py>) -> Distinct<'py> {
        Distinct {
            py,
            known: std::collections::HashMap::new(),
            raws: PyList::empty(py),
        }
    }

    fn position(&mut self, counter: &sketch::Counter) -> PyResult<u32> {
        let key = CounterKey::of(counter);
        if let Some(&position) = self.known.get(&key) {
            return Ok(position);
        }
        let position = self.known.len() as u32;
        self.raws.append(counter_tuple(self.py, &key)?)?;
        self.known.insert(key, position);
        Ok(position)
    }
}

/// A counter as `freeze` reads it: (sent, delivered, drops, redelivered, bytes, latency
/// summary or None).
fn counter_tuple<'py>(py: Python<'py>, key: &CounterKey) -> PyResult<Bound<'py, PyTuple>> {
    let summary: PyObject = match key.summary {
        Some((count, bits)) => {
            let [low, mean, p50, p95, p99, high] = bits.map(f64::from_bits);
            (count, low, mean, p50, p95, p99, high)
                .into_pyobject(py)?
                .into_any()
                .unbind()
        }
        None => py.None(),
    };
    let dropped = key.dropped;
    let items: Vec<PyObject> = vec![
        key.sent.into_pyobject(py)?.into_any().unbind(),
        key.delivered.into_pyobject(py)?.into_any().unbind(),
        // (DropCounts' order: the broker's session causes are not counted natively)
        (
            dropped[0], dropped[1], dropped[2], dropped[3], dropped[4], 0, 0, 0, dropped[5],
            dropped[6],
        )
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        key.redelivered.into_pyobject(py)?.into_any().unbind(),
        key.bytes.into_pyobject(py)?.into_any().unbind(),
        summary,
    ];
    PyTuple::new(py, items)
}

/// Python's `"%.12g" % value` (for the tests that hold it to Python's).
#[pyfunction]
fn format_g12(value: f64) -> String {
    fmt::g12(value)
}

/// The first `count` floats of stream `name` under `seed` (for the tests).
#[pyfunction]
fn stream_floats(seed: String, name: String, count: usize) -> Vec<f64> {
    let mut stream = Stream::new(&seed, &name);
    (0..count).map(|_| stream.random()).collect()
}

/// `count` draws of `normal(mean, stddev)` from stream `name` under `seed` (for the tests).
#[pyfunction]
fn stream_normals(seed: String, name: String, mean: f64, stddev: f64, count: usize) -> Vec<f64> {
    let mut stream = Stream::new(&seed, &name);
    (0..count).map(|_| stream.normal(mean, stddev)).collect()
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeRun>()?;
    module.add_function(wrap_pyfunction!(format_g12, module)?)?;
    module.add_function(wrap_pyfunction!(stream_floats, module)?)?;
    module.add_function(wrap_pyfunction!(stream_normals, module)?)?;
    module.add("ENGINE_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
