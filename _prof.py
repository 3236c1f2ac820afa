import os, sys, time, signal, subprocess
from bench import ingest
from bench.harness import run_publishers, start_bench_broker
devices=[f"dev-{i}" for i in range(4)]
b, w = start_bench_broker(devices)
env, db = ingest.prepare_edge(b.port, w, devices); env["VITRINE_MQTT_PROTOCOL"]="3.1.1"
run_publishers(b.port, devices, 15000)
t0=time.perf_counter()
with open(w/"edge.log","ab") as log:
    p = subprocess.Popen([".venv/bin/py-spy","record","--format","raw","-r","200","-o","/tmp/prof.txt","--threads","--",sys.executable,"-m","edge","--metrics-every","0"], env=env, stdout=log, stderr=subprocess.STDOUT)
while ingest._count(db) < 60000: time.sleep(0.05)
print("rate", 60000/(time.perf_counter()-t0))
subprocess.run(["pkill","-INT","-f","python -m edge"]); p.wait(30)
b.stop()
