"""A plate read's decision, one route for every read (lane controllers' WebSocket reads, vendor pushes, replays):
facts.py reads what the rules need under the vehicle's lock, rules.py (pure) decides, writes.py writes the outcome,
batch.py does all three for a batch of reads in one transaction, batcher.py brings the loop's reads to it.

`await decide(...)` from the server's loop; `plate_read_decide(...)` on a thread of one's own (a batch of one).
"""

from apps.access.decision.batch import PlateReadIn, plate_read_decide, plate_reads_decide
from apps.access.decision.batcher import decide
from apps.access.decision.writes import Decided

__all__ = ["Decided", "PlateReadIn", "decide", "plate_read_decide", "plate_reads_decide"]
