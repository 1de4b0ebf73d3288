//! Python nodes on the native engine: a node the engine does not model (the user's gateway
//! logic, a lockstep container, a gateway kind a user registered) stays a Python `Node`,
//! and the engine calls it back.
//!
//! The engine never calls Python itself: an event that concerns a Python node (a packet the
//! network delivers to it, a timer it set) leaves a [`ForeignCall`] in `foreign_call`, and
//! `run` returns at once, so the binding can hand it to Python with the engine free to be
//! called again (the node sends, sets timers and writes its trace lines through the methods
//! here, as the pure engine's `NodeContext` lets it). Both calls are the last thing their
//! event does in the pure engine too, so the order of everything is the same.

use super::{Engine, Event, Kind, Message, NodeRef, Packet, Tick};
use crate::sketch;

/// What a Python node must do now.
pub enum ForeignCall {
    /// its timer of this number is due
    Timer(u64),
    /// the network delivered this packet to it (`packet.dst`)
    Packet(Packet),
    /// a partition went down or healed (for the nodes watching them)
    CutsChanged,
}

impl Engine {
    /// Node `node` is a Python node: packets to it go to Python.
    pub fn add_foreign(&mut self, node: u32) {
        self.kinds[node as usize] = NodeRef::Foreign;
    }

    /// `NodeContext.send`: a packet a Python node sends, put on the network now.
    pub fn foreign_send(&mut self, packet: Packet) {
        self.transmit(packet);
    }

    /// `Coordinator.schedule_at(time, ...)` for a Python node: its timer `call` at `time`.
    pub fn foreign_schedule(&mut self, time: Tick, call: u64) {
        self.schedule(time, Event::Foreign(call));
    }

    /// `Coordinator.peek()`: the time of the next event.
    pub fn peek(&self) -> Option<Tick> {
        self.queue.peek_time()
    }

    /// `TraceRecorder.record` of a Python node: one canonical line.
    #[allow(clippy::too_many_arguments)]
    pub fn foreign_trace(
        &mut self,
        time: Tick,
        kind: &str,
        node: &str,
        peer: &str,
        topic: &str,
        message: &str,
        detail: &str,
    ) {
        if !self.tracer.enabled {
            return;
        }
        let line = self.tracer.begin(time, kind, node, peer, topic);
        line.push_str(message);
        line.push('\t');
        line.push_str(detail);
        self.tracer.end();
    }

    /// A partition went down or healed just now.
    pub(super) fn cuts_changed(&mut self) {
        if self.watching_cuts {
            self.foreign_call = Some(ForeignCall::CutsChanged);
        }
    }

    /// `NetworkModel.is_partitioned(src, dst)`: a cut between them is down now.
    pub fn is_partitioned(&self, src: u32, dst: u32) -> bool {
        self.cuts
            .iter()
            .any(|cut| cut.down_since.is_some() && cut.separates(src, dst))
    }

    /// How many topics hold a retained message (a subscription after one would be owed it).
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// `DeliveryLedger.destination(name)` of a Python node (made once).
    pub fn foreign_destination(&mut self, node: u32) {
        if self.ledger.destination_of[node as usize] == u32::MAX {
            let count = self.names.len();
            self.ledger.add_destination(node, count, true);
        }
    }

    /// A drop cause's number (`sketch::CAUSES`); anything else is `rejected`, as the
    /// Python ledger files it.
    pub fn cause_code(cause: &str) -> u8 {
        sketch::CAUSES
            .iter()
            .position(|known| *known == cause)
            .map_or(sketch::REJECTED, |code| code as u8)
    }

    /// A packet of a Python node, for the network.
    #[allow(clippy::too_many_arguments)]
    pub fn foreign_packet(
        puback: bool,
        src: u32,
        dst: u32,
        qos: u8,
        packet_id: u32,
        duplicate: bool,
        message: Message,
    ) -> Packet {
        Packet {
            kind: if puback { Kind::Puback } else { Kind::Publish },
            src,
            dst,
            message: std::rc::Rc::new(message),
            qos,
            packet_id,
            duplicate,
            sent_at: 0,
        }
    }
}
