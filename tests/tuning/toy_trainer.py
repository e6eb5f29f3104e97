"""A trial program for the search's tests: reads its hyperparameters, sleeps, writes metrics.json.

``x`` sets the score (best at 0.3); ``sleep`` how long it runs; ``fail`` makes it exit 1;
``write`` names the metric key it writes (default ``score``). With a checkpoint folder, it leaves
an empty checkpoint there.
"""

import json
import os
import sys
import time

hp = json.loads(os.environ.get("TRAINKIT_HYPERPARAMETERS") or "{}")
time.sleep(float(hp.get("sleep", 0)))
if str(hp.get("fail", "")).lower() in ("1", "true", "yes"):
    print("toy trainer: failing as asked", file=sys.stderr)
    sys.exit(1)
checkpoints = os.environ.get("TRAINKIT_CHECKPOINT_URI")
if checkpoints:  # leave a mark where this trial's checkpoints go
    os.makedirs(checkpoints, exist_ok=True)
    open(os.path.join(checkpoints, "model_000001.json"), "w").close()
out = os.environ["TRAINKIT_OUTPUT_URI"]
os.makedirs(out, exist_ok=True)
x = float(hp.get("x", 0.0))
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({hp.get("write", "score"): -((x - 0.3) ** 2), "x_seen": x}, f)
print("toy trainer: done")
