import * as path from 'node:path';

export interface ReapedStatus {
  readonly pid: number;
  /** exit code, or null when killed by a signal */
  readonly code: number | null;
  readonly signal: number | null;
  readonly core: boolean;
  /** command name, when details were asked for */
  readonly comm: string;
  /** start time in clock ticks since boot, -1 unknown */
  readonly startTicks: number;
}

/** The system calls hainit needs that Node does not offer. Negative results are -errno. */
export interface NativeAddon {
  spawn(path: string, argv: readonly string[], stdio: readonly [number, number, number], keepFds: readonly number[], foreground: boolean, newProcessGroup: boolean): number;
  reap(wantDetails: boolean): ReapedStatus[];
  signalsInstall(): number;
  signalsTarget(target: number): void;
  signalsRewrite(from: number, to: number): void;
  signalsMode(signal: number, mode: number): void;
  signalsDropped(): number;
  kill(pid: number, signal: number): number;
  /** 1/0 to set, -1 to query; returns the current state or -errno */
  subreaper(on: number): number;
  pdeathSignal(signal: number): number;
  inheritedFds(): number[];
  /** [read, write], close-on-exec, or -errno */
  pipe(): [number, number] | number;
}

export const SignalMode = { drop: 0, forward: 1, notify: 2 } as const;

let addon: NativeAddon | undefined;

/** Loaded as early as possible: the snapshot of inherited descriptors is taken at load time. */
export function native(): NativeAddon {
  if (!addon) {
    // lib/src/native/index.js -> build/Release/hainit.node
    const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'hainit.node');
    addon = require(file) as NativeAddon;
  }
  return addon;
}
