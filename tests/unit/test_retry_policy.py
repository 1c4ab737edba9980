"""The delivery retry schedule: exponential, capped, configurable."""

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from duban.domain.retry import RetryPolicy
from duban.settings import Settings

minutes = st.integers(min_value=1, max_value=24 * 60).map(lambda m: timedelta(minutes=m))


def test_default_schedule_is_postfix_like():
    waits = [RetryPolicy().backoff(n) for n in range(1, 8)]
    assert [w.total_seconds() / 60 for w in waits] == [15, 30, 60, 120, 240, 240, 240]


@given(first=minutes, cap=minutes, attempts=st.integers(min_value=1, max_value=200))
def test_waits_double_from_first_and_never_pass_the_cap(first, cap, attempts):
    policy = RetryPolicy(first=first, cap=cap)
    wait = policy.backoff(attempts)
    seconds = min(first.total_seconds() * 2 ** (attempts - 1), cap.total_seconds())
    assert wait.total_seconds() == seconds
    assert policy.backoff(attempts + 1) >= wait
    assert policy.backoff(1) == min(first, cap)


def test_settings_configure_the_policy(monkeypatch):
    monkeypatch.setenv("DUBAN_RETRY_FIRST_MINUTES", "5")
    monkeypatch.setenv("DUBAN_RETRY_CAP_MINUTES", "60")
    monkeypatch.setenv("DUBAN_RETRY_GIVE_UP_DAYS", "2")
    policy = Settings().retry_policy
    assert policy == RetryPolicy(
        first=timedelta(minutes=5), cap=timedelta(hours=1), give_up=timedelta(days=2)
    )
    assert policy.backoff(4) == timedelta(minutes=40) and policy.backoff(5) == timedelta(hours=1)
