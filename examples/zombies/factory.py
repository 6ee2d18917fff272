"""A zombie factory: every 200 ms it starts a worker that leaves an orphan behind (the way a
headless browser or `sh -c 'cmd &'` does), and reports how many zombies the PID namespace holds.
Under a naive PID 1 (this script itself, or `node app.js` as PID 1) nobody reaps the orphans and
zombies pile up; under hainit they are reaped as they exit."""
import os, subprocess, sys, time

def zombies():
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    n += 1
        except OSError:
            pass
    return n

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
for i in range(rounds):
    # The worker starts a helper in the background and exits at once: the helper is orphaned,
    # re-parented to PID 1, and becomes a zombie when it ends unless PID 1 reaps it.
    subprocess.run(["sh", "-c", "sleep 0.05 & exit 0"])
    time.sleep(0.2)
    print(f"round {i + 1}: {zombies()} zombie(s) in this PID namespace", flush=True)
