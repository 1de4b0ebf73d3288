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
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use engine::{
    AggValue, AggregateSpec, Engine, Function, GatewaySpec, Jitter, Loss, Payload, Profile,
    ProfileSource, SensorSpec, Setup, Value,
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

/// One run of a scenario on the native engine.
#[pyclass(unsendable, module = "pytest_edgesim.core._native")]
struct NativeRun {
    engine: Engine,
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
            let forward_topic = engine.intern_topic(&g.3);
            let spec = GatewaySpec {
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
            };
            engine.add_gateway(g.0, spec);
        }
        NativeRun { engine }
    }

    /// Run every event before `until` (ticks); the clock then reads `until`.
    fn run(&mut self, until: i64) {
        self.engine.run(until);
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
            totals.sent += counter.sent;
            totals.delivered += counter.delivered;
            for cause in 0..5 {
                totals.dropped[cause] += counter.dropped[cause];
            }
            totals.redelivered += counter.redelivered;
            totals.bytes += counter.bytes;
            totals.latency.merge(&counter.latency);
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
            let payload: PyObject = match &message.payload {
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
            };
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
}

use rng::Stream;

fn engine_seed(engine: &Engine) -> String {
    engine.seed_text()
}

/// A counter's value as `freeze` reads it: (sent, delivered, drops, redelivered, bytes,
/// latency summary (count, min, mean, p50, p95, p99, max: the floats' bits) or None).
#[derive(PartialEq, Eq, Hash)]
struct CounterKey {
    sent: u64,
    delivered: u64,
    dropped: [u64; 5],
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
        (dropped[0], dropped[1], dropped[2], dropped[3], dropped[4])
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
