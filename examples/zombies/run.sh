#!/usr/bin/env bash
# The local zombie-debugging story: the same factory as PID 1 on its own, then under hainit -v.
# Needs root (unshare). Run: examples/zombies/run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
hainit="$here/../../bin/hainit"
echo "== naive PID 1: python3 factory.py"
unshare --pid --fork --kill-child --mount-proc -- python3 "$here/factory.py" 5
echo
echo "== under hainit -v"
unshare --pid --fork --kill-child --mount-proc -- "$hainit" -v -- python3 "$here/factory.py" 5 2>&1
echo
echo "== hainit ps inside a namespace with a zombie (no ps, no shell needed)"
unshare --pid --fork --kill-child --mount-proc -- python3 -c "
import os, subprocess, time
subprocess.run(['sh', '-c', 'sleep 0.05 & exit 0']); time.sleep(0.3)
os.execv('$hainit', ['hainit', 'ps'])" 2>&1
