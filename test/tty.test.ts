/**
 * Terminals (README "Signals": the child gets the terminal's foreground, so
 * `docker run -it … bash` has job control and Ctrl-C); matches tini's pexpect tests (exit 0 -> 0,
 * Ctrl-C -> 130) and dumb-init's "bash -m has job control".
 */
import { strict as assert } from 'node:assert';
import { cleanEnv, fixture, hainitCommand, ptyHainit, ptyRun, PtyStep, PYTHON } from '../support/pid1';

const PROMPT = 'P> $';
// hainit's early warnings about an interactive bash (it ignores SIGTERM, it runs sleep without
// exec) are right, but they land on the same terminal, after a prompt the script waits for.
const bashEnv = cleanEnv({ PS1: 'P> ', TERM: 'dumb', HAINIT_LOG_LEVEL: 'error' });
const BASH = ['bash', '--norc', '--noprofile', '-m', '-i'];

describe('on a terminal', function () {
  this.timeout(30_000);

  for (const asPid1 of [true, false]) {
    const where = asPid1 ? 'as PID 1' : 'not PID 1';

    it(`${where}: the child is the terminal's foreground process group`, async () => {
      const r = await ptyHainit([PYTHON, fixture('procinfo.py')], [['expect', '"fds"']], { asPid1 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
      const json = r.output.slice(r.output.indexOf('{'), r.output.lastIndexOf('}') + 1);
      const i = JSON.parse(json) as { pid: number; pgid: number; tpgid: number };
      assert.equal(i.pgid, i.pid);
      assert.equal(i.tpgid, i.pgid, 'the terminal\'s foreground group is the child\'s');
    });

    it(`${where}: Ctrl-C at the terminal ends a child with default handlers: exit 130`, async () => {
      const r = await ptyHainit(['sh', '-c', 'echo ready; exec sleep 100'], [
        ['expect', 'ready'],
        ['sleep', 0.3],
        ['send', '\x03'],
      ], { asPid1 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 130, r.output);
    });
  }

  it('bash -m -i has job control: monitor on, background jobs listed, no "no job control" complaint; exit 0 -> 0', async () => {
    const r = await ptyHainit(BASH, [
      ['expect', PROMPT],
      ['send', 'set -o | grep monitor\n'],
      ['expect', 'monitor\\s+on'],
      ['expect', PROMPT],
      ['send', 'sleep 5 &\n'],
      ['expect', '\\[1\\] \\d+'],
      ['expect', PROMPT],
      ['send', 'jobs\n'],
      ['expect', '\\[1\\]\\+\\s+Running\\s+sleep 5 &'],
      ['expect', PROMPT],
      ['send', 'kill %1; wait\n'],
      ['expect', PROMPT],
      ['send', 'exit 0\n'],
    ], { env: bashEnv });
    assert.equal(r.failed, null, r.output);
    assert.doesNotMatch(r.output, /no job control|cannot set terminal process group/);
    assert.equal(r.code, 0, r.output);
  });

  it('bash: Ctrl-C ends the foreground job (130), bash goes on; fg/bg and Ctrl-Z work; exit 3 -> 3', async () => {
    const r = await ptyHainit(BASH, [
      ['expect', PROMPT],
      ['send', 'sleep 100\n'],
      ['sleep', 0.5],
      ['send', '\x03'],
      ['expect', PROMPT],
      ['send', 'echo "st=$?"\n'],
      ['expect', 'st=130'],
      ['expect', PROMPT],
      // Ctrl-Z stops the foreground job and bash gets the terminal back; bg, fg, then Ctrl-C.
      ['send', 'sleep 100\n'],
      ['sleep', 0.5],
      ['send', '\x1a'],
      ['expect', 'Stopped\\s+sleep 100'],
      ['expect', PROMPT],
      ['send', 'bg\n'],
      ['expect', '\\[1\\]\\+ sleep 100 &'],
      ['expect', PROMPT],
      ['send', 'fg\n'],
      ['expect', 'sleep 100'],
      ['sleep', 0.5],
      ['send', '\x03'],
      ['expect', PROMPT],
      ['send', 'echo "st=$? jobs=$(jobs | wc -l)"\n'],
      ['expect', 'st=130 jobs=0'],
      ['expect', PROMPT],
      ['send', 'exit 3\n'],
    ], { env: bashEnv });
    assert.equal(r.failed, null, r.output);
    assert.equal(r.code, 3, r.output);
  });

  describe('started from an interactive shell (not PID 1): the job stops with the child, as with dumb-init', () => {
    // bash is the session leader on the terminal, with job control; hainit is one of its jobs.
    const SHELL = ['bash', '--norc', '--noprofile', '-i'];
    const shellEnv = cleanEnv({ PS1: 'P> ', TERM: 'dumb' });
    // the command line typed at bash (no word here has a quote in it)
    const hainit = (...command: string[]): string => `${hainitCommand(['-v', '--', ...command], false).map((w) => `'${w}'`).join(' ')}\n`;
    // /proc/PID/stat field 3 of the job's leader (hainit) and of its child: T when stopped.
    // bash learns of a stop from SIGCHLD, a moment after hainit logged that it stops itself; -l
    // says how the job stopped (plain `jobs` says "Stopped" whatever the signal).
    const JOBS_ONCE_STOPPED = 'until [[ $(jobs -l) == *Stopped* ]]; do sleep 0.1; done; jobs -l\n';
    // Ctrl-D ends cat's input; the job ended with 0 and the shell leaves.
    const END_CAT_AND_EXIT: PtyStep[] = [
      ['send', '\x04'],
      ['expect', PROMPT],
      ['send', 'echo "rc=$?"\n'],
      ['expect', 'rc=0'],
      ['expect', PROMPT],
      ['send', 'exit 0\n'],
    ];
    // A line typed at the terminal: its echo, then cat's copy (hainit's log lines may come between);
    // then cat's input ends and the shell leaves.
    const catCopiesThenExit = (word: string): PtyStep[] => [['send', `${word}\n`], ['expect', `${word}[\\s\\S]*${word}`], ...END_CAT_AND_EXIT];
    const STATES = 'p=$(jobs -p); set -- $(cat /proc/$p/task/*/children); echo "states $(cut -d" " -f3 /proc/$p/stat) $(cut -d" " -f3 /proc/$1/stat)"\n';

    it('Ctrl-Z: hainit and its child stop, the shell reports the job stopped; fg and bg continue it; Ctrl-C then gives 130', async () => {
      const r = await ptyRun(SHELL, [
        ['expect', PROMPT],
        ['send', hainit('sleep', '100')],
        ['expect', 'child started'],
        ['sleep', 0.3],
        ['send', '\x1a'],
        ['expect', '\\[1\\]\\+\\s+Stopped\\s'],
        ['expect', PROMPT],
        ['send', STATES],
        ['expect', 'states T T'],
        ['expect', PROMPT],
        // fg: bash continues hainit's group and gives it the terminal; hainit passes both on.
        ['send', 'fg\n'],
        ['expect', 'terminal handed back to the child'],
        ['expect', 'SIGCONT passed on'],
        ['send', '\x1a'],
        ['expect', '\\[1\\]\\+\\s+Stopped\\s'],
        ['expect', PROMPT],
        // bg: both run again, the terminal stays with bash.
        ['send', 'bg\n'],
        ['expect', '\\[1\\]\\+ .*sleep.* &'],
        // hainit's log lines come after bash's prompt
        ['expect', 'continued in the background'],
        ['expect', 'SIGCONT passed on'],
        ['send', STATES],
        ['expect', 'states [SR] [SR]'],
        ['expect', PROMPT],
        // fg of a running job: bash gives hainit's group the terminal but sends no SIGCONT, so the
        // terminal stays with hainit; Ctrl-C reaches hainit, which passes it on as it ends.
        ['send', 'fg\n'],
        ['sleep', 0.5],
        ['send', '\x03'],
        ['expect', PROMPT],
        ['send', 'echo "rc=$? jobs=$(jobs | wc -l)"\n'],
        ['expect', 'rc=130 jobs=0'],
        ['expect', PROMPT],
        ['send', 'exit 0\n'],
      ], { env: shellEnv, timeoutMs: 20_000 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /child stopped by SIGTSTP/, r.output);
      assert.doesNotMatch(r.output, /child exited|internal error/, r.output);
    });

    it('a child reading the terminal from the background stops on SIGTTIN, and so does hainit; fg lets it read', async () => {
      const r = await ptyRun(SHELL, [
        ['expect', PROMPT],
        ['send', hainit('cat')],
        ['expect', 'child started'],
        ['sleep', 0.3],
        // the terminal echoes the line, then cat prints it: cat can read the terminal (hainit's
        // log lines may come between)
        ['send', 'one\n'],
        ['expect', 'one[\\s\\S]*one'],
        ['send', '\x1a'],
        ['expect', '\\[1\\]\\+\\s+Stopped\\s'],
        ['expect', PROMPT],
        ['send', 'bg\n'],
        // hainit's log lines come after bash's prompt
        ['expect', 'child stopped by SIGTTIN'],
        ['send', JOBS_ONCE_STOPPED],
        ['expect', 'Stopped \\(tty input\\)'],
        ['expect', PROMPT],
        ['send', 'fg\n'],
        ['expect', 'terminal handed back to the child'],
        ['expect', 'SIGCONT passed on'],
        ...catCopiesThenExit('two'),
      ], { env: shellEnv, timeoutMs: 20_000 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
    });

    it('a shell pipeline: Ctrl-Z stops the whole group and bg continues all of it; fg of the running job: the first read gets the terminal', async () => {
      const r = await ptyRun(SHELL, [
        ['expect', PROMPT],
        ['send', hainit('sh', '-c', 'sleep 2 | cat; echo piped; exec cat')],
        ['expect', 'child started'],
        ['sleep', 0.3],
        ['send', '\x1a'],
        ['expect', '\\[1\\]\\+\\s+Stopped\\s'],
        ['expect', PROMPT],
        // bg continues sh, sleep and the first cat (SIGCONT to the group, not to sh alone)
        ['send', 'bg\n'],
        ['expect', 'SIGCONT passed on'],
        // fg of the running job sends no SIGCONT: cat, still in the background, stops at its
        // first read (SIGTTIN) while hainit's job holds the terminal, and gets the terminal.
        // (When hainit reads the record of bg's SIGCONT only after fg, it hands it over then.)
        ['send', 'fg\n'],
        ['expect', 'terminal handed (back )?to the child'],
        // the terminal's echo, then cat's copy (hainit's log may come between)
        ['send', 'three\n'],
        ['expect', 'three[\\s\\S]*three'],
        ['send', '\x04'],
        ['expect', PROMPT],
        ['send', 'echo "rc=$? jobs=$(jobs | wc -l)"\n'],
        ['expect', 'rc=0 jobs=0'],
        ['expect', PROMPT],
        ['send', 'exit 0\n'],
      ], { env: shellEnv, timeoutMs: 20_000 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /\npiped\r/, 'the pipeline ran to its end');
    });

    it('started in the background (&): the shell keeps the terminal; the child stops at its first read, and fg gives it the terminal', async () => {
      const r = await ptyRun(SHELL, [
        ['expect', PROMPT],
        ['send', hainit('cat').replace(/\n$/, ' &\n')],
        ['expect', 'child stopped by SIGTTIN'],
        // bash still reads the terminal
        ['send', 'echo "al""ive"\n'],
        ['expect', 'alive'],
        ['send', JOBS_ONCE_STOPPED],
        ['expect', 'Stopped \\(tty input\\)'],
        ['expect', PROMPT],
        ['send', 'fg\n'],
        ['expect', 'terminal handed back to the child'],
        ['expect', 'SIGCONT passed on'],
        ...catCopiesThenExit('four'),
      ], { env: shellEnv, timeoutMs: 20_000 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
    });

    // CI saw this race once: bash wrote its prompt while hainit wrote a log line, and a
    // non-blocking write to a terminal another process is writing to fails with EAGAIN (the
    // kernel's tty write lock). The line waited in hainit's queue, and hainit stopped itself with
    // it. Here the wait is made long on purpose: Ctrl-S stops the terminal's output (input goes on),
    // the child stops itself, and Ctrl-Q comes a moment later, while hainit is about to stop.
    it('a log line the terminal could not take at once is written before hainit stops itself, not once it is continued', async () => {
      const r = await ptyRun(SHELL, [
        ['expect', PROMPT],
        ['send', hainit('sh', '-c', 'read x; kill -TSTP $$; exec cat')],
        ['expect', 'ready:'],
        ['sleep', 0.3],
        ['send', '\x13'], // Ctrl-S: the terminal's output stops
        ['sleep', 0.1],
        ['send', 'go\n'], // the child reads it and stops itself with SIGTSTP
        ['sleep', 0.3],
        ['send', '\x11'], // Ctrl-Q: the output goes on
        ['expect', 'child stopped by SIGTSTP: hainit stops itself'],
        ['expect', '\\[1\\]\\+\\s+Stopped\\s'],
        ['expect', PROMPT],
        ['send', 'fg\n'],
        ['expect', 'SIGCONT passed on'],
        ...catCopiesThenExit('five'),
      ], { env: shellEnv, timeoutMs: 15_000 });
      assert.equal(r.failed, null, r.output);
      assert.equal(r.code, 0, r.output);
    });
  });

  it('input typed at the terminal reaches the child (tac reverses it)', async () => {
    const r = await ptyHainit(['tac'], [
      ['send', '1\n2\n3\n'],
      ['expect', '3\\r?\\n'],
      ['send', '\x04'],
      ['expect', '3\\r\\n2\\r\\n1\\r\\n'],
    ]);
    assert.equal(r.failed, null, r.output);
    assert.equal(r.code, 0, r.output);
  });
});
