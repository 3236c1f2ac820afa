import time, json, cProfile, pstats, sys
from pathlib import Path
import tempfile
from edge.config import load_config
from edge.db import connect, migrate
from edge.seed import seed
from edge.catalogue import Catalogue
from edge.identity import Identifier
from edge.sessions import Sessions
from edge.registry import Registry
from edge.metrics import Metrics
from edge.pipeline import Pipeline
from edge.inbound import Inbound
from bench.harness import layout, payloads, STORE
d = Path(tempfile.mkdtemp())
db = connect(d/"e.db"); migrate(db)
devs=[f"dev-{i}" for i in range(4)]
seed(db, layout(devs))
p = Pipeline(db, STORE, catalogue=Catalogue(db), identifier=Identifier({}), sessions=Sessions(db.conn, 90), registry=Registry(), metrics=Metrics())
items=[]
for dv in devs:
    for i, body in enumerate(payloads(dv, 12500)):
        ch = "nfc" if i % 2 else "qr"
        items.append(Inbound(i, 1, f"vitrine/v1/{STORE}/devices/{dv}/{ch}", body, time.time()))
def run():
    for k in range(0, len(items), 1000):
        p.process_batch(items[k:k+1000])
t0=time.perf_counter()
if len(sys.argv)>1:
    cProfile.run("run()", "/tmp/pipe.prof")
    pstats.Stats("/tmp/pipe.prof").sort_stats("tottime").print_stats(18)
else:
    run()
el=time.perf_counter()-t0
print(f"{len(items)/el:.0f} msg/s, {el/len(items)*1e6:.1f} us/msg")
