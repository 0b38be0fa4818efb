"""Liaowang (瞭望): the composition root.

`foundation.domain` and `foundation.config` are leaves that every stage may import (the vocabulary
and the validated configuration); everything else here (CLI, wiring, API, broker) sits at the
end of the flow and may import every stage.
"""

__version__ = "0.1.0"
