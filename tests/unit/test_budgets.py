"""A connection's budgets on a virtual clock: reading slows over the message rate, with
a warning at most every SLOWED_NOTICE_EVERY seconds; past the invalid-message budget the
connection is cut off."""

from __future__ import annotations

from backend.budgets import SLOWED_NOTICE_EVERY, MessageBudgets
from backend.config import BackendConfig

CONFIG = BackendConfig(
    max_message_rate=10.0, message_burst=3, max_invalid_rate=1.0, invalid_burst=2
)


def test_a_burst_is_read_at_once_then_reading_waits_for_the_rate() -> None:
    budgets = MessageBudgets(CONFIG)
    assert [budgets.pace(0.0) for _ in range(3)] == [(0.0, None)] * 3
    wait, warning = budgets.pace(0.0)
    assert wait == 1 / CONFIG.max_message_rate
    assert warning == "Over 10 messages/s: reading slowed"


def test_the_slowed_warning_is_repeated_only_every_few_seconds() -> None:
    budgets = MessageBudgets(CONFIG)
    warnings = []
    for tick in range(200):  # 20 messages/s for 10 s: twice the rate
        _, warning = budgets.pace(tick / 20)
        warnings.append((tick / 20, warning))
    times = [at for at, warning in warnings if warning is not None]
    assert len(times) == 2 and times[1] - times[0] == SLOWED_NOTICE_EVERY


def test_the_invalid_budget_cuts_off_once_spent() -> None:
    budgets = MessageBudgets(CONFIG)
    assert [budgets.spend_invalid(0.0) for _ in range(3)] == [False, False, True]
    assert budgets.cut_off
    assert budgets.cut_off_message == "Too many invalid messages (over 1/s): closing"


def test_the_invalid_budget_refills_at_its_rate() -> None:
    budgets = MessageBudgets(CONFIG)
    spent = [budgets.spend_invalid(second) for second in range(100)]  # 1 a second: the rate
    assert not any(spent) and not budgets.cut_off
