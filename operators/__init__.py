"""Reusable Rx operators, each a function returning `Callable[[Observable], Observable]`.

`paced` is the one source among them: `pace` over an iterable it reads as it goes.
Each public operator's docstring draws it as a marble diagram, as `reactivex.operators`
does. They depend on reactivex and the audio frame type only.
"""

from operators.backoff import retry_with_backoff
from operators.coalesce import coalesce
from operators.display_rate import display_rate
from operators.distinct_recent import distinct_recent
from operators.isolate import isolate
from operators.level import level_meter
from operators.pace import pace, paced
from operators.rechunk import rechunk

__all__ = [
    "coalesce",
    "display_rate",
    "distinct_recent",
    "isolate",
    "level_meter",
    "pace",
    "paced",
    "rechunk",
    "retry_with_backoff",
]
