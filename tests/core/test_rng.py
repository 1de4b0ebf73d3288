import math
import subprocess
import sys

from pytest_edgesim.core.rng import RandomStream, StreamFactory, derive_seed


def test_same_seed_and_name_give_the_same_draws():
    a = RandomStream(7, "node:s1")
    b = RandomStream(7, "node:s1")
    assert [a.random() for _ in range(20)] == [b.random() for _ in range(20)]


def test_streams_are_independent_by_name_and_seed():
    first = [RandomStream(7, "node:s1").random() for _ in range(3)]
    assert first != [RandomStream(7, "node:s2").random() for _ in range(3)]
    assert first != [RandomStream(8, "node:s1").random() for _ in range(3)]


def test_draws_are_uniform_enough():
    stream = RandomStream(1, "uniformity")
    draws = [stream.random() for _ in range(20_000)]
    assert all(0.0 <= x < 1.0 for x in draws)
    # mean of U(0,1) is 0.5 with sd 1/sqrt(12 n); 5 sigma bound
    assert abs(sum(draws) / len(draws) - 0.5) < 5 * math.sqrt(1 / 12 / len(draws))


def test_normal_and_exponential_moments():
    stream = RandomStream(2, "moments")
    n = 20_000
    normals = [stream.normal(10.0, 2.0) for _ in range(n)]
    mean = sum(normals) / n
    assert abs(mean - 10.0) < 5 * 2.0 / math.sqrt(n)
    exps = [stream.exponential(3.0) for _ in range(n)]
    assert abs(sum(exps) / n - 3.0) < 5 * 3.0 / math.sqrt(n)


def test_factory_returns_one_stream_per_name():
    factory = StreamFactory(3)
    assert factory("x") is factory("x")
    assert factory("x") is not factory("y")


def test_values_do_not_depend_on_hash_seed():
    code = (
        "from pytest_edgesim.core.rng import RandomStream, derive_seed;"
        "s=RandomStream(5,'n');print([s.random() for _ in range(3)], derive_seed(5,'trial-1'))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "12345")
    }
    assert len(outputs) == 1
    assert derive_seed(5, "trial-1") != derive_seed(5, "trial-2")
