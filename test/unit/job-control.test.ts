import { strict as assert } from 'node:assert';
import { Logger } from '../../src/log/logger';
import { JobControl } from '../../src/supervisor/job-control';

const SIGSTOP = 19;
const SIGTSTP = 20;
const SIGTTIN = 21;
const CHILD = 4242;

/** The system calls as a script: what the child stopped on, and who holds the terminal. */
function setup(o: { stoppedBy: number; holdsTerminal?: boolean; enabled?: boolean }) {
  const calls: string[] = [];
  let stop = o.stoppedBy;
  const jobs = new JobControl({
    addon: {
      childStopped: (pid) => {
        calls.push(`childStopped ${pid}`);
        const s = stop;
        stop = 0; // each stop is reported once
        return s;
      },
      stopSelf: (sig) => (calls.push(`stopSelf ${sig}`), 0),
      terminalForeground: (pgid) => (calls.push(`terminalForeground ${pgid}`), o.holdsTerminal ? 1 : 0),
    },
    log: new Logger('error', 'text'),
    enabled: o.enabled ?? true,
    holdContinue: (hold) => calls.push(`holdContinue ${hold}`),
    continueChild: () => calls.push('continueChild'),
  });
  return { jobs, calls };
}

describe('job control (not PID 1)', () => {
  it('the child stopped by SIGTSTP: hainit stops itself with it; once continued, hands the terminal over before the SIGCONT goes on', () => {
    const { jobs, calls } = setup({ stoppedBy: SIGTSTP, holdsTerminal: true });
    jobs.childMayHaveStopped(CHILD);
    assert.deepEqual(calls, [`childStopped ${CHILD}`, 'holdContinue true', `stopSelf ${SIGTSTP}`, `terminalForeground ${CHILD}`, 'continueChild']);
    // The record of the SIGCONT that continued hainit ends the hold; it was passed on already.
    calls.length = 0;
    jobs.continued(CHILD);
    assert.deepEqual(calls, ['holdContinue false']);
    jobs.continued(CHILD);
    assert.deepEqual(calls, ['holdContinue false', `terminalForeground ${CHILD}`], 'a later SIGCONT is an ordinary one');
  });

  it('SIGTTIN while hainit is in the background: stops itself with SIGTTIN', () => {
    const { jobs, calls } = setup({ stoppedBy: SIGTTIN, holdsTerminal: false });
    jobs.childMayHaveStopped(CHILD);
    assert.ok(calls.includes(`stopSelf ${SIGTTIN}`), calls.join(', '));
  });

  it('SIGTTIN while hainit holds the terminal (fg of a running job): hands it over and continues the child, no stop', () => {
    const { jobs, calls } = setup({ stoppedBy: SIGTTIN, holdsTerminal: true });
    jobs.childMayHaveStopped(CHILD);
    assert.deepEqual(calls, [`childStopped ${CHILD}`, `terminalForeground ${CHILD}`, 'continueChild']);
  });

  it('SIGSTOP, no stop at all, or hainit as PID 1: hainit goes on and leaves the terminal alone', () => {
    for (const o of [{ stoppedBy: SIGSTOP }, { stoppedBy: 0 }, { stoppedBy: SIGTSTP, enabled: false }]) {
      const { jobs, calls } = setup({ ...o, holdsTerminal: true });
      jobs.childMayHaveStopped(CHILD);
      assert.deepEqual(calls, [`childStopped ${CHILD}`], JSON.stringify(o));
    }
  });

  it('a SIGCONT from elsewhere hands the terminal over only when enabled', () => {
    const on = setup({ stoppedBy: 0, holdsTerminal: true });
    on.jobs.continued(CHILD);
    assert.deepEqual(on.calls, [`terminalForeground ${CHILD}`]);
    const pid1 = setup({ stoppedBy: 0, holdsTerminal: true, enabled: false });
    pid1.jobs.continued(CHILD);
    assert.deepEqual(pid1.calls, []);
  });
});
