import { NativeAddon } from '.';
import { UsageError } from '../exit-codes';

/**
 * The application's environment and command line, byte for byte, and the Node settings that
 * are the application's alone.
 *
 * Node decodes argv and the environment as UTF-8 and turns every invalid byte into U+FFFD, so
 * hainit takes both from /proc/self/cmdline and /proc/self/environ (the addon's rawArgv and
 * rawEnviron) and hands the child those bytes. Without /proc, the decoded strings are used.
 *
 * Settings that would act inside hainit's own Node (APP_ONLY) never reach it:
 * - dist/hainit: its entry stub (native/entry/stub.c) moves them out of the C library's environ
 *   before Node starts; /proc/self/environ still holds them, and the child gets them from there.
 * - bin/hainit: its sh launcher renames each NAME to HAINIT_APP_NAME before `exec node`.
 * HAINIT_APP_NAME is documented (README, "Node settings for the application"): it gives the
 * application NAME=value, in place of any NAME, in both forms. Only names in APP_ONLY can be
 * carried; any other HAINIT_APP_* is refused (125), so no variable steers hainit itself.
 */
export const CARRY_PREFIX = 'HAINIT_APP_';

/** Keep in step with native/entry/stub.c (for_the_app) and bin/hainit's list. */
export function forTheApp(name: string): boolean {
  return name.startsWith('NODE_') || name.startsWith('UV_') || name === 'OPENSSL_CONF' || name === 'OPENSSL_MODULES' || name === 'OPENSSL_ENGINES';
}

const RAW = Symbol('hainit.rawEnvironment');

/** The environment as bytes, when it came from /proc: what a child started with this env gets. */
export function rawEntries(env: NodeJS.ProcessEnv): readonly Buffer[] | undefined {
  return (env as { [RAW]?: readonly Buffer[] })[RAW];
}

const EQ = 0x3d;

/**
 * The environment of the application (and of every command hainit runs) from the entries hainit
 * was started with: HAINIT_APP_NAME=v becomes NAME=v (dropping any NAME), the rest stays as it is,
 * in its order. Throws UsageError for a HAINIT_APP_* that names no Node setting.
 *
 * Start-up runs this over every entry, so each is decoded once, as latin1 (a byte is a character),
 * and cut as a string. Where every byte is ASCII, latin1 and UTF-8 agree; otherwise the values are
 * decoded again as UTF-8, entry by entry. The steps are small functions: one function holding all
 * the loops ran long enough at every start for V8 to compile all of it again with Sparkplug.
 */
export function applicationEnvironment(entries: readonly Buffer[]): { env: NodeJS.ProcessEnv; raw: Buffer[] } {
  const texts = entries.map(latin1);
  const ascii = texts.every(isAscii);
  const carried = carriedSettings(entries, texts);
  const raw = carried === undefined ? entries.slice() : withCarried(entries, texts, carried);
  const env: NodeJS.ProcessEnv = ascii && carried === undefined ? fromTexts(texts) : fromBytes(raw);
  Object.defineProperty(env, RAW, { value: raw, enumerable: false });
  return { env, raw };
}

/** NAME -> NAME=value of every HAINIT_APP_NAME=value (the last one given wins); undefined when none. */
function carriedSettings(entries: readonly Buffer[], texts: readonly string[]): Map<string, Buffer> | undefined {
  let carried: Map<string, Buffer> | undefined;
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    if (!text.startsWith(CARRY_PREFIX)) continue;
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    const target = name.slice(CARRY_PREFIX.length);
    if (!forTheApp(target)) {
      throw new UsageError(`${printable(Buffer.from(name, 'latin1'))}: only NODE_*, UV_* and OPENSSL_CONF/MODULES/ENGINES can be passed to the application this way`);
    }
    carried ??= new Map();
    carried.set(target, Buffer.concat([Buffer.from(`${target}=`, 'latin1'), eq < 0 ? Buffer.alloc(0) : entries[i].subarray(eq + 1)]));
  }
  return carried;
}

/** The entries with each carried setting where its first carrier stood, and any NAME it replaces dropped. */
function withCarried(entries: readonly Buffer[], texts: readonly string[], carried: Map<string, Buffer>): Buffer[] {
  const raw: Buffer[] = [];
  const placed = new Set<string>();
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    if (name.startsWith(CARRY_PREFIX)) {
      const target = name.slice(CARRY_PREFIX.length);
      // where the first carrier stood, with the last value given
      if (!placed.has(target)) raw.push(carried.get(target)!);
      placed.add(target);
    } else if (!carried.has(name)) {
      raw.push(entries[i]);
    }
  }
  return raw;
}

/** NAME=value texts (ASCII) as an environment object; entries without a name are left out. */
function fromTexts(texts: readonly string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    const eq = text.indexOf('=');
    if (eq > 0) env[text.slice(0, eq)] = text.slice(eq + 1);
  }
  return env;
}

/** NAME=value entries decoded as UTF-8, as Node decodes its own environment. */
function fromBytes(raw: readonly Buffer[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of raw) {
    const eq = e.indexOf(EQ);
    if (eq > 0) env[e.toString('utf8', 0, eq)] = e.toString('utf8', eq + 1);
  }
  return env;
}

const NOT_ASCII = /[^\x00-\x7f]/;

/** Whether every character of `text` is ASCII: then bytes read as latin1 are its UTF-8 too. */
export function isAscii(text: string): boolean {
  return !NOT_ASCII.test(text);
}

/**
 * b as latin1. Buffer's own latin1Slice (every Node since 6 has it, on every Buffer) is one call
 * into C++; toString('latin1') and Buffer.concat first run JavaScript of Node's that nothing
 * before hainit ran, so start-up would compile it: 0.6 M instructions for 35 variables (callgrind).
 */
function latin1(b: Buffer): string {
  const slice = (b as Buffer & { latin1Slice?: (start: number, end: number) => string }).latin1Slice;
  return typeof slice === 'function' ? slice.call(b, 0, b.length) : b.toString('latin1');
}

/**
 * The application's environment, from /proc/self/environ when there is one (bytes kept), else
 * from process.env (decoded; in dist/hainit without /proc the entry stub's NODE_* are then lost).
 */
export function environmentForTheApp(addon: NativeAddon, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const fromProc = addon.rawEnviron();
  const entries = fromProc ?? Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [Buffer.from(`${k}=${v}`)]));
  return applicationEnvironment(entries).env;
}

/**
 * The raw bytes of the last `count` arguments hainit was given (the command after `--`), when
 * /proc/self/cmdline holds them and they decode to what Node gave `decoded`; else undefined.
 */
export function rawCommand(addon: NativeAddon, decoded: readonly string[]): Buffer[] | undefined {
  const all = addon.rawArgv();
  if (!all || all.length < decoded.length) return undefined;
  const tail = all.slice(all.length - decoded.length);
  return tail.every((b, i) => b.toString() === decoded[i]) ? tail : undefined;
}

/** Bytes for a message: printable ASCII as is, anything else as \xNN. */
export function printable(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : c === 0x5c ? '\\\\' : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}
