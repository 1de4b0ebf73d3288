from pytest_edgesim.core.realtime import RealtimeCoordinator


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_events_wait_for_their_wall_clock_moment_scaled():
    clock = FakeClock()
    coordinator = RealtimeCoordinator(time_scale=2.0, clock=clock, sleep=clock.sleep)
    seen = []
    coordinator.schedule_at(1_000_000, lambda _: seen.append(clock.now))
    coordinator.schedule_at(3_000_000, lambda _: seen.append(clock.now))
    coordinator.start()
    coordinator.run()
    assert seen == [100.5, 101.5]  # 1 s and 3 s of virtual time at 2x speed
    assert coordinator.now == 3_000_000


def test_late_events_run_at_once_and_lag_is_recorded():
    clock = FakeClock()
    coordinator = RealtimeCoordinator(clock=clock, sleep=clock.sleep)
    coordinator.start()
    clock.now += 0.25  # the machine was busy
    coordinator.schedule_at(100_000, lambda _: None)
    coordinator.run()
    assert clock.slept == []
    assert abs(coordinator.max_lag_s - 0.15) < 1e-9
    assert coordinator.ticks_at(clock.now) == 250_000
