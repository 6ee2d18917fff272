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

/**
 * The environment as the child gets it, when it came from /proc: entries as ASCII strings (their
 * own UTF-8) when every byte is ASCII, else as Buffers of their bytes.
 */
export function rawEntries(env: NodeJS.ProcessEnv): readonly (string | Buffer)[] | undefined {
  return (env as { [RAW]?: readonly (string | Buffer)[] })[RAW];
}

/**
 * The environment of the application (and of every command hainit runs) from the entries hainit
 * was started with, each as latin1 text (a character a byte): HAINIT_APP_NAME=v becomes NAME=v
 * (dropping any NAME), the rest stays as it is, in its order. Throws UsageError for a
 * HAINIT_APP_* that names no Node setting.
 *
 * Where every byte is ASCII, latin1 and UTF-8 agree: the texts are the environment. Otherwise
 * the values are decoded as UTF-8 and the child gets the bytes. The steps are small functions:
 * one function holding all the loops ran long enough at every start for V8 to compile all of it
 * again with Sparkplug.
 */
export function applicationEnvironment(texts: readonly string[], ascii = texts.every(isAscii)): { env: NodeJS.ProcessEnv; raw: readonly (string | Buffer)[] } {
  const carried = carriedSettings(texts);
  const kept = carried === undefined ? texts.slice() : withCarried(texts, carried);
  const raw = ascii ? kept : kept.map((t) => Buffer.from(t, 'latin1'));
  const env: NodeJS.ProcessEnv = ascii ? fromTexts(kept) : fromBytes(raw as Buffer[]);
  Object.defineProperty(env, RAW, { value: raw, enumerable: false });
  return { env, raw };
}

/** NAME -> NAME=value of every HAINIT_APP_NAME=value (the last one given wins); undefined when none. */
function carriedSettings(texts: readonly string[]): Map<string, string> | undefined {
  let carried: Map<string, string> | undefined;
  for (const text of texts) {
    if (!text.startsWith(CARRY_PREFIX)) continue;
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    const target = name.slice(CARRY_PREFIX.length);
    if (!forTheApp(target)) {
      throw new UsageError(`${printable(Buffer.from(name, 'latin1'))}: only NODE_*, UV_* and OPENSSL_CONF/MODULES/ENGINES can be passed to the application this way`);
    }
    carried ??= new Map();
    carried.set(target, `${target}=${eq < 0 ? '' : text.slice(eq + 1)}`);
  }
  return carried;
}

/** The entries with each carried setting where its first carrier stood, and any NAME it replaces dropped. */
function withCarried(texts: readonly string[], carried: Map<string, string>): string[] {
  const kept: string[] = [];
  const placed = new Set<string>();
  for (const text of texts) {
    const eq = text.indexOf('=');
    const name = eq < 0 ? text : text.slice(0, eq);
    if (name.startsWith(CARRY_PREFIX)) {
      const target = name.slice(CARRY_PREFIX.length);
      // where the first carrier stood, with the last value given
      if (!placed.has(target)) kept.push(carried.get(target)!);
      placed.add(target);
    } else if (!carried.has(name)) {
      kept.push(text);
    }
  }
  return kept;
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

const EQ = 0x3d;

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

/** The entries of an environ block (NUL after each), as they are. */
function entriesOf(block: string): string[] {
  const texts = block.split('\0');
  texts.pop();
  return texts;
}

/**
 * The application's environment, from /proc/self/environ when there is one (bytes kept), else
 * from process.env (decoded; in dist/hainit without /proc the entry stub's NODE_* are then lost).
 */
export function environmentForTheApp(addon: NativeAddon, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const block = addon.rawEnviron();
  if (block !== null) return applicationEnvironment(entriesOf(block), isAscii(block)).env;
  return applicationEnvironment(Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [Buffer.from(`${k}=${v}`).toString('latin1')]))).env;
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
