import { UsageError } from './values';

/** Characters that only a shell gives meaning to, outside quotes. */
const SHELL_SYNTAX = new Set([...'|&;<>()$`*?[]{}~#!\n']);

/**
 * Hook and check commands need no shell in the image: a simple line is split into argv the way
 * sh would split it (quotes, backslashes). A line that needs a shell (pipes, `;`, `&&`,
 * variables, redirections, globs) runs with `/bin/sh -c` when the image has one; else it is
 * refused at start-up. `option` names the option in the message of a line that does not parse.
 */
export function splitCommandLine(line: string, what: string, shellAvailable: () => boolean, option = what): string[] {
  assertParses(line, option);
  const words = splitSimple(line);
  if (words && words.length > 0) return words;
  if (words && words.length === 0) throw new UsageError(`${what}: empty command`);
  if (!shellAvailable()) {
    throw new UsageError(`${what}: "${line}" needs a shell (pipes, ;, &&, $VARS, redirections or globs) and /bin/sh does not exist; write it as a plain command`);
  }
  return ['/bin/sh', '-c', line];
}

/** argv for a line without shell syntax, or undefined when a shell is needed. */
export function splitSimple(line: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let text = '';
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '$' || line[j] === '`') return undefined;
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1])) j++;
        text += line[j];
      }
      if (j >= line.length) return undefined;
      word = (word ?? '') + text;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= line.length) return undefined;
      word = (word ?? '') + line[++i];
    } else if (SHELL_SYNTAX.has(c) && !(c === '#' && word !== undefined)) {
      return undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  // `VAR=value cmd` is an assignment only a shell performs.
  if (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) return undefined;
  return words;
}

/**
 * Refuses a line that no shell can run: a quote, backquote or `$(` left open. Found at start-up,
 * not when the drain command is due (`sh -c` would fail then with "Unterminated quoted string").
 * Conservative: what it does not understand (here-documents) it lets through, for sh to judge.
 */
export function assertParses(line: string, what: string): void {
  const open = unclosed(line);
  if (open) throw new UsageError(`${what}: "${line}" does not parse: ${open} is never closed`);
}

/** The construct left open at the end of a shell line, or undefined. */
export function unclosed(line: string): string | undefined {
  // `top` and `$(` read words; quotes and backquotes open contexts of their own.
  type Context = 'top' | '$(' | '"' | "'" | '`';
  const stack: Context[] = ['top'];
  let wordStart = true;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    const ctx = stack[stack.length - 1];
    if (ctx === "'") {
      if (c === "'") stack.pop();
      continue;
    }
    if (c === '\\') {
      // a backslash-newline joins lines: the next word has not started
      if (line[++i] !== '\n') wordStart = false;
      continue;
    }
    if (c === '$' && line[i + 1] === '$') {
      // $$ (the shell's pid) is one token: its second $ starts no ${ (`$${`}` is $$, {, then the backquote)
      i++;
      wordStart = false;
      continue;
    }
    if (c === '$' && line[i + 1] === '{') {
      // ${...}: opaque up to its brace (sh reads its own rules inside)
      const end = line.indexOf('}', i);
      if (end < 0) return undefined;
      i = end;
      wordStart = false;
      continue;
    }
    if (ctx === '`') {
      if (c === '`') stack.pop();
      continue;
    }
    if (ctx === '"') {
      if (c === '"') stack.pop();
      else if (c === '`') stack.push('`');
      else if (c === '$' && line[i + 1] === '(') stack.push('$('), i++;
      continue;
    }
    // top or $(
    if (c === '#' && wordStart) {
      const nl = line.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
      wordStart = true;
      continue;
    }
    if (c === '<' && line[i + 1] === '<') return undefined; // a here-document: sh's to judge
    if (c === "'" || c === '"' || c === '`') stack.push(c);
    else if (c === '$' && line[i + 1] === '(') stack.push('$('), i++;
    else if (c === '(' && ctx === '$(') stack.push('$(');
    else if (c === ')' && ctx === '$(') stack.pop();
    wordStart = /[\s;&|()<>]/.test(c);
  }
  const left = stack[stack.length - 1];
  const names: Record<Context, string | undefined> = { top: undefined, '$(': 'a "$("', '"': 'a double quote', "'": 'a single quote', '`': 'a backquote' };
  return names[left];
}
