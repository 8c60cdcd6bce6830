"""Host half of bench/api (see run): sbx-api on a free port with a stand-in VMM,
wrk for read requests/s, then create+delete cycles/s from one client."""
import http.client, json, os, re, shutil, subprocess, sys, tempfile, time

build = sys.argv[1]
work = tempfile.mkdtemp(prefix="sbx-bench-api.")
key = "bench-key"
open(f"{work}/key", "w").write(key)
vmm = f"{work}/vmm"
open(vmm, "w").write("#!/bin/sh\nexec sleep 100000\n")
os.chmod(vmm, 0o755)
for f in ("kernel", "initrd"):
    open(f"{work}/{f}", "w").write("x")
api = subprocess.Popen([f"{build}/bin/sbx-api", "--listen", "127.0.0.1:0", "--port-file",
                        f"{work}/port", "--state-dir", f"{work}/state", "--api-key-file",
                        f"{work}/key", "--vmm", vmm, "--kernel", f"{work}/kernel", "--initrd",
                        f"{work}/initrd", "--max-sandboxes", "1000", "--max-running", "1000"],
                       stderr=open(f"{work}/api.log", "w"))
try:
    for _ in range(100):
        if os.path.exists(f"{work}/port") and open(f"{work}/port").read().strip():
            break
        time.sleep(0.1)
    port = int(open(f"{work}/port").read())
    conn = http.client.HTTPConnection("127.0.0.1", port)
    hdr = {"X-Api-Key": key, "Content-Type": "application/json"}

    def call(method, path, body=None):
        conn.request(method, path, json.dumps(body) if body is not None else None, hdr)
        r = conn.getresponse()
        data = r.read()
        return r.status, data

    # A snapshot for the sandboxes to name: any small source the API accepts.
    os.makedirs(f"{work}/tree/etc")
    open(f"{work}/tree/etc/hostname", "w").write("bench\n")
    st, data = call("POST", "/v1/snapshots", {"name": "bench", "source": f"{work}/tree",
                                               "capacity_gib": 1})
    if st not in (200, 201):
        sys.exit(f"snapshot: {st} {data[:200]}")
    for _ in range(300):
        st, data = call("GET", "/v1/snapshots/bench")
        if json.loads(data).get("status", "ready") == "ready":
            break
        time.sleep(0.1)
    for i in range(20):
        call("POST", "/v1/sandboxes", {"name": f"b{i}", "snapshot": "bench"})
    out = subprocess.run(["wrk", "-t2", "-c16", "-d5s", "-H", f"X-Api-Key: {key}",
                          f"http://127.0.0.1:{port}/v1/sandboxes"],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    lat = re.search(r"Latency\s+(\S+)", out).group(1)
    print(f"GET /v1/sandboxes (20 sandboxes): {rps:.0f} req/s, mean latency {lat} (wrk -t2 -c16 -d5s)")
    n, t0 = 50, time.monotonic()
    for i in range(n):
        st, data = call("POST", "/v1/sandboxes", {"name": f"c{i}", "snapshot": "bench"})
        if st != 201:
            sys.exit(f"create: {st} {data[:200]}")
        st, _ = call("DELETE", f"/v1/sandboxes/c{i}")
    dt = time.monotonic() - t0
    print(f"create+delete (stand-in VMM): {n / dt:.1f} cycles/s, {dt / n * 1000:.1f} ms each")
finally:
    api.terminate()
    api.wait()
    subprocess.run(["pkill", "-f", vmm])
    shutil.rmtree(work, ignore_errors=True)
