/**
 * Real processes with known dispositions for the forensics tests, and a fake /proc for the unit
 * tests. Every process started here is SIGKILLed by `killStarted()` (call it in `after`).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FIXTURES, PYTHON } from './pid1';

const started: ChildProcess[] = [];

export function startProcess(cmd: string, args: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  return child;
}

/** Starts dispositions.py in `mode` and resolves with the numbers on its "ready" line. */
export async function startFixture(mode: string): Promise<{ child: ChildProcess; pids: number[] }> {
  const child = startProcess(PYTHON, [path.join(FIXTURES, 'dispositions.py'), mode]);
  const pids = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`dispositions.py ${mode} never got ready: ${out}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^ready ([\d ]+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].trim().split(' ').map(Number));
      }
    });
    child.on('exit', (code) => reject(new Error(`dispositions.py ${mode} exited with ${code}: ${out}`)));
  });
  return { child, pids };
}

export function killStarted(): void {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

export async function waitUntil<T>(probe: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface FakeProcess {
  pid: number;
  ppid: number;
  comm: string;
  state?: string;
  pgrp?: number;
  argv?: string[];
  /** clock ticks after boot */
  start?: number;
  rssKiB?: number;
  kernelThread?: boolean;
  sigCgt?: string;
  sigIgn?: string;
  /** one mask per thread; the first is the leader's */
  sigBlk?: string[];
  sigPnd?: string;
  /** fd -> signalfd mask */
  signalfds?: Record<string, string>;
  /** write task/TID/children files (CONFIG_PROC_CHILDREN); else readers must scan */
  childrenFiles?: boolean;
}

const ZERO = '0000000000000000';

/** A directory laid out as /proc for the given processes, with /proc/uptime. */
export function fakeProc(procs: FakeProcess[], uptimeSeconds = 1000): { root: string; cleanup(): void } {
  const root = mkdtempSync(path.join(tmpdir(), 'hainit-fakeproc-'));
  writeFileSync(path.join(root, 'uptime'), `${uptimeSeconds.toFixed(2)} 1.00\n`);
  for (const p of procs) {
    const dir = path.join(root, String(p.pid));
    mkdirSync(dir);
    const state = p.state ?? 'S';
    const flags = p.kernelThread ? 0x00208040 : 0x00400100;
    const rssPages = Math.round((p.rssKiB ?? 0) / 4);
    writeFileSync(
      path.join(dir, 'stat'),
      `${p.pid} (${p.comm}) ${state} ${p.ppid} ${p.pgrp ?? p.pid} 1 0 -1 ${flags} 0 0 0 0 0 0 0 0 20 0 1 0 ${p.start ?? 0} 0 ${rssPages} 18446744073709551615 0 0\n`,
    );
    writeFileSync(path.join(dir, 'cmdline'), p.argv && state !== 'Z' ? p.argv.map((a) => `${a}\0`).join('') : '');
    writeFileSync(path.join(dir, 'statm'), `0 ${rssPages} 0 0 0 0 0\n`);
    const blk = p.sigBlk ?? [ZERO];
    const status = (tid: number, mask: string) =>
      [
        `Name:\t${p.comm}`,
        `State:\t${state} (x)`,
        `Pid:\t${tid}`,
        `PPid:\t${p.ppid}`,
        ...(p.rssKiB !== undefined && state !== 'Z' && !p.kernelThread ? [`VmRSS:\t${String(p.rssKiB).padStart(8)} kB`] : []),
        `Threads:\t${blk.length}`,
        `SigPnd:\t${tid === p.pid ? (p.sigPnd ?? ZERO) : ZERO}`,
        `ShdPnd:\t${ZERO}`,
        `SigBlk:\t${mask}`,
        `SigIgn:\t${p.sigIgn ?? ZERO}`,
        `SigCgt:\t${p.sigCgt ?? ZERO}`,
        '',
      ].join('\n');
    writeFileSync(path.join(dir, 'status'), status(p.pid, blk[0]));
    blk.forEach((mask, i) => {
      const tid = i === 0 ? p.pid : p.pid * 100 + i;
      const tdir = path.join(dir, 'task', String(tid));
      mkdirSync(tdir, { recursive: true });
      writeFileSync(path.join(tdir, 'status'), status(tid, mask));
      if (p.childrenFiles) {
        const kids = i === 0 ? procs.filter((c) => c.ppid === p.pid).map((c) => c.pid) : [];
        writeFileSync(path.join(tdir, 'children'), kids.map((k) => `${k} `).join(''));
      }
    });
    mkdirSync(path.join(dir, 'fdinfo'));
    for (const [fd, mask] of Object.entries(p.signalfds ?? {})) {
      writeFileSync(path.join(dir, 'fdinfo', fd), `pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\nsigmask:\t${mask}\n`);
    }
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The hex mask /proc prints for a set of signal numbers. */
export function maskOf(...signals: number[]): string {
  let m = 0n;
  for (const s of signals) m |= 1n << BigInt(s - 1);
  return m.toString(16).padStart(16, '0');
}
