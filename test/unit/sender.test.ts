import { strict as assert } from 'node:assert';
import { SignalEvent, describeSender } from '../../src/signals/router';

describe('describeSender: the name the handler read, never a /proc read of its own', () => {
  const event = (code: number, senderPid: number, senderComm: string): SignalEvent => ({
    signal: 15, code, senderPid, senderUid: 0, senderComm, sent: 0, target: 0, errno: 0,
    forwarded: false, fromSelf: false, fromOwnTty: false, monoNs: 0n,
  });

  it('names the sender from the record, "gone" when the handler found none', () => {
    assert.equal(describeSender(event(0, 42, 'kill')), 'pid 42 (kill)');
    // this test's own pid: a read of /proc now would find "node"; the record is what counts
    assert.equal(describeSender(event(0, process.pid, '')), `pid ${process.pid} (gone)`);
  });

  it('the runtime (pid 0), the kernel and the terminal', () => {
    assert.equal(describeSender(event(0, 0, '')), 'pid 0 (outside the container)');
    assert.equal(describeSender(event(0x80, 0, '')), 'the kernel or terminal');
    assert.equal(describeSender(event(1, 0, '')), 'the kernel');
  });
});
