import { strict as assert } from 'node:assert';
import { mountPointOf, parseNoexec } from '../../src/native';

// Where the single binary may write its addon: a candidate on a noexec mount is skipped.
describe('native addon extraction: mount options', () => {
  const mountinfo = [
    '22 1 0:21 / / ro,relatime shared:1 - overlay overlay rw',
    '23 22 0:22 / /proc rw,nosuid,nodev,noexec - proc proc rw',
    '24 22 0:23 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw',
    '25 22 0:24 / /dev/shm rw,nosuid,nodev,noexec - tmpfs shm rw',
    '26 22 0:25 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw', // mounted over the noexec /tmp
    '27 22 0:26 / /my\\040dir rw - tmpfs tmpfs rw',
  ].join('\n');

  it('takes the latest mount on a point and reads noexec from the mount options', () => {
    const { points, noexec } = parseNoexec(mountinfo);
    assert.deepEqual(noexec.sort(), ['/dev/shm', '/proc']);
    assert.ok(points.includes('/my dir'), 'octal escapes in mount points are decoded');
  });

  it('finds the mount a path lives on by the longest prefix, on path boundaries', () => {
    const points = ['/', '/tmp', '/tmpfoo', '/dev/shm'];
    assert.equal(mountPointOf('/tmp/x', points), '/tmp');
    assert.equal(mountPointOf('/tmpx', points), '/');
    assert.equal(mountPointOf('/dev/shm', points), '/dev/shm');
    assert.equal(mountPointOf('/var/tmp', points), '/');
  });
});
